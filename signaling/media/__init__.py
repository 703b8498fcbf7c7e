"""The media side of the signalling: wires sessions to the sfu/ library (publisher and subscriber
peer connections, track events, renegotiation, server-side mute)."""

from signaling.media.media_feature import MediaFeature
from signaling.media.participant_media import ParticipantMedia

__all__ = ["MediaFeature", "ParticipantMedia"]

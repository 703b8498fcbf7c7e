"""BigBlueButton's API (create, join, end, getMeetingInfo...) over urok's rooms, for platforms built for it."""

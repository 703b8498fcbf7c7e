"""When a lesson with a duration warns and ends."""

from __future__ import annotations

WARNING_LEADS_S = (300, 60)  # warn 5 minutes and 1 minute before the end


def warning_leads(duration_s: float) -> list[float]:
    """Seconds before the end at which to warn, latest lead first: 5 min and 1 min before the end
    when the lesson is longer than that; a lesson of a minute or less is warned at half time."""
    if duration_s <= 0:
        return []
    leads = [float(lead) for lead in WARNING_LEADS_S if lead < duration_s]
    return leads or [duration_s / 2]

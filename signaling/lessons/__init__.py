"""Lessons from the e-journal's timetable: a class's lesson, its occurrences, roster and attendance."""

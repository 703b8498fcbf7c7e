"""The attendance CSV's cells: text a spreadsheet would run as a formula is neutralised (OWASP CSV
injection); numbers, booleans and harmless text are left as they are."""

import pytest

from signaling.rooms.attendance import CSV_COLUMNS, Attendance, csv_safe


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                  "=", "-"])
def test_text_that_starts_like_a_formula_gets_a_leading_apostrophe(text: str) -> None:
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["Анна-Мария", "O'Brien", " =1", "a=1", "", 12.5, -3, True, None])
def test_other_values_are_left_as_they_are(value: object) -> None:
    assert csv_safe(value) == value


def test_rows_neutralise_every_text_column_and_keep_numbers() -> None:
    att = Attendance()
    att.joined(identity="=id", name="=HYPERLINK(1)", family_name="+fam", given_name="@giv", role="participant",
               registered=True, now=100.0)
    att.left("=id", 160.0)
    row = dict(zip(CSV_COLUMNS, att.rows(200.0)[0], strict=True))
    assert (row["identity"], row["name"], row["family_name"], row["given_name"]) == (
        "'=id", "'=HYPERLINK(1)", "'+fam", "'@giv")
    assert (row["registered"], row["first_joined"], row["last_left"], row["total_seconds"]) == (True, 100.0, 160.0,
                                                                                                60.0)
    assert att.records()[0].to_json(200.0)["name"] == "=HYPERLINK(1)"  # the JSON report is not a spreadsheet

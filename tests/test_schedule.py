import zoneinfo
from datetime import UTC, datetime

import pytest

from quebec.schedule import ScheduleError, parse

START = datetime(2026, 11, 30, 10, 7, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("text", "cron", "first", "second"),
    [
        ("*/5 * * * *", "*/5 * * * *", "10:10:00", "10:15:00"),
        ("*/10 * * * * *", "*/10 * * * * *", "10:07:40", "10:07:50"),
        ("@hourly", "0 * * * *", "11:00:00", "12:00:00"),
        ("every second", "* * * * * *", "10:07:31", "10:07:32"),
        ("every 10 seconds", "*/10 * * * * *", "10:07:40", "10:07:50"),
        ("every minute", "* * * * *", "10:08:00", "10:09:00"),
        ("every 5 minutes", "*/5 * * * *", "10:10:00", "10:15:00"),
        ("every hour", "0 * * * *", "11:00:00", "12:00:00"),
        ("every 6 hours", "0 */6 * * *", "12:00:00", "18:00:00"),
        ("every day at 9am", "0 9 * * *", "12-01 09:00:00", "12-02 09:00:00"),
        ("every day at 6:15pm", "15 18 * * *", "18:15:00", "12-01 18:15:00"),
        ("every day at noon", "0 12 * * *", "12:00:00", "12-01 12:00:00"),
        ("every monday at 8:30", "30 8 * * 1", "12-07 08:30:00", "12-14 08:30:00"),
        ("Every Weekday at 17:45", "45 17 * * 1-5", "17:45:00", "12-01 17:45:00"),
    ],
)
def test_forms(text, cron, first, second):
    schedule = parse(text, default_tz=zoneinfo.ZoneInfo("UTC"))
    assert schedule.cron == cron
    runs = [schedule.next_after(START)]
    runs.append(schedule.next_after(runs[0]))
    expected = [value if "-" in value else f"11-30 {value}" for value in (first, second)]
    assert [run.strftime("%m-%d %H:%M:%S") for run in runs] == expected


def test_time_zone_suffix_and_default():
    schedule = parse("every day at 9am Europe/Paris")
    assert schedule.tz.key == "Europe/Paris"
    assert schedule.next_after(START) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 9:00 CET
    assert parse("0 9 * * *").tz.key == "UTC"  # settings.TIME_ZONE


def test_daylight_saving_gap_still_runs():
    schedule = parse("30 2 * * * Europe/Paris")
    run = schedule.next_after(datetime(2026, 3, 28, 23, 0, tzinfo=UTC))  # the night clocks go forward
    assert run.astimezone(zoneinfo.ZoneInfo("Europe/Paris")).hour == 3


def test_previous_before():
    assert parse("*/5 * * * *").previous_before(START) == datetime(2026, 11, 30, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty string"),
        ("* * *", "expected 5 cron fields"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "never matches a date"),
        ("every 7 minutes", "does not divide an hour evenly; use one of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30"),
        ("every 45 seconds", "does not divide a minute evenly"),
        ("every funday at 9am", "'funday' is not a day"),
        ("every day at 25:00", "'25:00' is not a time of day"),
        ("every day at 13pm", "the hour must be 1 to 12 with am/pm"),
        ("every fortnight on tuesday", "not a schedule Quebec understands"),
        ("0 9 * * * Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_errors_say_why(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("every weekday at 9am Europe/Paris", "At 09:00, Monday through Friday (Europe/Paris)"),
        ("*/10 * * * * *", "Every 10 seconds (UTC)"),
        ("@hourly", "Every hour (UTC)"),
        ("every 5 minutes", "Every 5 minutes (UTC)"),
    ],
)
def test_schedules_in_words(text, words):
    assert parse(text).describe() == words

"""The abandoned cart through the real ingest, inbox, timer and sending code, with a moved clock."""

from datetime import timedelta
from email import message_from_bytes
from email.policy import default

from tests.delivery.journeys.support import cart_definition, shop
from tests.delivery.sending.test_campaigns import smtp  # noqa: F401 - a fixture


def test_the_cart_reminder_goes_after_the_wait_only_to_who_did_not_buy_and_may_be_mailed(
    database_url,
    smtp,  # noqa: F811 - the fixture
):
    inbox, port = smtp
    s = shop(database_url, {"alice": True, "bob": True, "carol": False})
    journey = s.journey(cart_definition(s.template_id))

    for person in ("alice", "bob", "carol"):
        s.track(person, "Product Added", {"sku": f"SKU-{person}"})
    s.track("alice", "Page Viewed")  # not listened for
    assert s.run_inbox() == 3
    s.run_due()
    waiting = s.by_person(journey)
    assert {p: [(r.state, r.waiting) for r in rows] for p, rows in waiting.items()} == {
        p: [("ACTIVE", True)] for p in ("alice", "bob", "carol")
    }
    assert waiting["alice"][0].wake_at == s.clock.now() + timedelta(hours=1)

    s.clock.advance(timedelta(minutes=10))
    s.track("bob", "Order Completed", {"revenue": 30})
    s.run_inbox()
    bob = s.by_person(journey)["bob"][0]
    assert (bob.state, bob.exit_reason) == ("EXITED", "exitOn Order Completed")
    assert bob.converted_at is not None

    s.clock.advance(timedelta(minutes=49))
    assert s.run_due().moved == 0, "a wait ended early"
    s.clock.advance(timedelta(minutes=1))
    assert s.run_due().sends == 2  # alice and carol reach the send step; bob is gone
    s.send_all(journey, port)

    assert [rcpt for _from, rcpt, _raw in inbox.messages] == [["alice@example.org"]]
    message = message_from_bytes(inbox.messages[0][2], policy=default)
    assert message["Subject"] == "Your cart, Alice"
    assert message["Feedback-ID"].endswith(":journey:cdp")
    assert "you left SKU-alice" in message.get_body(("plain",)).get_content()
    outcomes = {(row.profile_id, row.status) for row in s.deliveries(journey)}
    assert outcomes == {(s.people["alice"], "SENT"), (s.people["carol"], "SKIPPED")}
    [carol] = [row for row in s.deliveries(journey) if row.profile_id == s.people["carol"]]
    assert "consent" in carol.reason
    done = s.by_person(journey)
    assert [r.state for r in done["alice"]] == ["COMPLETED"]
    assert s.arrivals(journey) == {"s1": 3, "s2": 2}, "bob left at the wait"

    # reentry "never": a second cart, even under a new message id, enrols nobody again.
    s.track("alice", "Product Added", {"sku": "SKU-2"})
    assert s.run_inbox() == 0
    assert len(s.by_person(journey)["alice"]) == 1


def test_the_same_event_delivered_twice_enrols_once_even_when_reentry_is_always(database_url):
    s = shop(database_url, {"dana": True}, name="twice")
    journey = s.journey(cart_definition(s.template_id, reentry="always"))
    s.track("dana", "Product Added", message_id="m-1")
    s.track("dana", "Product Added", message_id="m-1")
    s.track("dana", "Product Added", message_id="m-2")
    assert s.run_inbox() == 2
    assert len(s.by_person(journey)["dana"]) == 2


def test_after_exit_lets_a_person_back_in_only_once_the_last_entry_ended(database_url):
    s = shop(database_url, {"erin": True}, name="after-exit")
    journey = s.journey(cart_definition(s.template_id, reentry="after_exit"))
    s.track("erin", "Product Added")
    s.track("erin", "Product Added")
    assert s.run_inbox() == 1
    s.track("erin", "Order Completed")
    s.run_inbox()
    s.clock.advance(timedelta(seconds=1))
    s.track("erin", "Product Added")
    assert s.run_inbox() == 1
    assert sorted(r.state for r in s.by_person(journey)["erin"]) == ["ACTIVE", "EXITED"]


def test_a_purchase_in_the_same_batch_as_the_cart_exits_it_and_counts_as_a_conversion(
    database_url,
):
    s = shop(database_url, {"fay": True}, name="same-batch")
    journey = s.journey(cart_definition(s.template_id))
    cart = s.message("fay", "Product Added")
    s.clock.advance(timedelta(seconds=5))
    s.send_batch([cart, s.message("fay", "Order Completed", {"revenue": 9})])
    assert s.run_inbox() == 1
    [fay] = s.by_person(journey)["fay"]
    assert (fay.state, fay.exit_reason) == ("EXITED", "exitOn Order Completed")
    assert fay.converted_at is not None


def test_a_purchase_after_a_merge_exits_the_cart_of_the_anonymous_visitor(database_url):
    s = shop(database_url, {"gus": True}, name="merged")
    journey = s.journey(cart_definition(s.template_id))
    s.track(None, "Product Added", anonymous_id="anon-gus")
    assert s.run_inbox() == 1
    s.run_due()
    s.clock.advance(timedelta(minutes=5))
    s.identify("gus", {"first_name": "Gus"}, anonymous_id="anon-gus")  # merges the visitor
    s.clock.advance(timedelta(minutes=5))
    s.track("gus", "Order Completed")
    s.run_inbox()
    [row] = s.enrollments(journey)
    assert (row.state, row.exit_reason) == ("EXITED", "exitOn Order Completed")


def test_leaving_the_journey_skips_its_message_held_for_quiet_hours(database_url):
    from delivery.sending import policy as rules
    from delivery.sending import throttle
    from domain.uow import UnitOfWork
    from tests.delivery.journeys.support import ACTOR

    s = shop(database_url, {"hal": True}, name="held")

    async def quiet(uow: UnitOfWork) -> None:
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(
            quiet_start="00:00", quiet_end="23:59", sending_domain_rate=throttle.MAX_RATE,
            recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip

    s.uow(quiet)
    journey = s.journey(cart_definition(s.template_id, wait={"seconds": 1}))
    s.track("hal", "Product Added")
    s.run_inbox()
    s.run_due()
    s.clock.advance(timedelta(seconds=2))
    s.run_due()
    s.send_all(journey, 1)  # held by quiet hours: the relay is never asked
    [held] = s.deliveries(journey)
    assert held.status == "QUEUED"
    s.track("hal", "Order Completed")
    s.run_inbox()
    [skipped] = s.deliveries(journey)
    assert (skipped.status, skipped.reason) == (
        "SKIPPED",
        "left the journey: exitOn Order Completed",
    )


def test_an_event_that_cannot_be_applied_is_dropped_and_the_others_go_on(database_url, monkeypatch):
    from delivery.journeys import inbox

    s = shop(database_url, {"ian": True, "joy": True}, name="poison")
    journey = s.journey(cart_definition(s.template_id))
    real = inbox._entry

    def failing(journey_row, plan, event, now):
        if event.properties.get("poison"):
            raise ValueError("cannot apply this event")
        return real(journey_row, plan, event, now)

    monkeypatch.setattr(inbox, "_entry", failing)
    s.send_batch([s.message("ian", "Product Added", {"poison": True}),
                  s.message("joy", "Product Added")])  # fmt: skip
    assert s.run_inbox() == 1
    assert list(s.by_person(journey)) == ["joy"]
    assert s.run_inbox() == 0, "the failed event was dropped, not left to fail again"

import pytest

from tests.delivery.tracking.support import send_campaign, smtp_inbox


@pytest.fixture
def sent(database_url):
    """A campaign sent to four people, and the inbox that received it."""
    with smtp_inbox() as (inbox, port):
        yield send_campaign(database_url, port), inbox

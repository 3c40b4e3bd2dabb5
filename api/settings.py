"""Typed settings, read from the environment (see the README for each)."""

import ipaddress
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from delivery.deliverability.dns_lookup import parse_server
from delivery.deliverability.verification import Resolver
from delivery.sending.domains import DnsSettings
from delivery.sending.relay import RelaySettings, Tls
from delivery.tracking import machines
from domain.db import Timeouts


class Env(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    env: Env = Env.DEVELOPMENT
    database_url: str | None = None
    broker_url: str | None = None
    secret_key: SecretStr | None = None
    app_db_role: str = "cdp_app"
    data_dir: Path = Path(".cdp")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Tls = Tls.NONE
    # The sender of test emails (sendTestEmail), until sending domains exist.
    mail_from: str = "CDP <cdp@localhost>"
    # What sending domains' DNS records point at (delivery/sending/domains.py).
    spf_include: str | None = None
    return_path_host: str | None = None
    dkim_ed25519: bool = False
    # Deliverability: the SMTP server for bounces and feedback loops (`cdp inbound`),
    # the DNS server the checks ask ("host:port"; the system's resolvers when unset),
    # and how long received reports keep their raw bytes.
    inbound_host: str = "127.0.0.1"
    inbound_port: int = Field(default=2525, ge=1, le=65535)
    inbound_max_bytes: int = Field(default=32 * 1024 * 1024, ge=65536)
    inbound_retention_days: int = Field(default=30, ge=1)
    dns_resolver: str | None = None
    dns_timeout: float = Field(default=5.0, gt=0, le=60)
    # The public address the relay sends from, for the PTR check; unknown for a provider's relay.
    relay_ip: str | None = None
    # Relays' webhooks (POST /webhooks/{provider}); a provider left unset refuses every request.
    webhook_sendgrid_public_key: SecretStr | None = None
    webhook_postmark_username: str | None = None
    webhook_postmark_password: SecretStr | None = None
    webhook_generic_secret: SecretStr | None = None
    webhook_ses_topic_arns: str | None = None  # comma-separated; SES is refused while unset
    # How long a worker holds a batch of deliveries; a dead worker's batch goes to another after it.
    send_lease_seconds: int = Field(default=300, ge=1, le=3600)
    log_level: str = "INFO"
    log_json: bool | None = None
    jwt_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    graphql_max_cost: int = Field(default=5000, ge=10)
    outbox_relay_interval: float = Field(default=2.0, gt=0)
    worker_processes: int = Field(default=1, ge=1)
    worker_threads: int = Field(default=4, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_statement_timeout: float = Field(default=30.0, ge=0)
    db_lock_timeout: float = Field(default=10.0, ge=0)
    db_idle_in_transaction_timeout: float = Field(default=60.0, ge=0)
    ingest_timeout: float = Field(default=30.0, gt=0)
    event_retention_days: int = Field(default=0, ge=0)
    # An order is credited to the message last clicked within this many days before it.
    attribution_days: int = Field(default=5, ge=1, le=365)
    # How long the click and open links of a sent message record hits.
    tracking_link_days: int = Field(default=365, ge=1, le=3650)
    # A CSV of mail privacy proxy ranges (Apple's egress-ip-ranges.csv), beside the built-in ones.
    tracking_proxy_ranges: Path | None = None

    @field_validator("app_db_role")
    @classmethod
    def _role_name(cls, value: str) -> str:
        if value and not value.replace("_", "").isalnum():
            raise ValueError("APP_DB_ROLE must be letters, digits and underscores")
        return value

    @field_validator("dns_resolver")
    @classmethod
    def _resolver(cls, value: str | None) -> str | None:
        if value:
            parse_server(value)
        return value or None

    @field_validator("relay_ip")
    @classmethod
    def _relay_ip(cls, value: str | None) -> str | None:
        if value:
            ipaddress.ip_address(value)
        return value or None

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> "Settings":
        if self.env is Env.PRODUCTION:
            if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:  # noqa: PLR2004
                raise ValueError("SECRET_KEY of at least 32 characters is required in production")
            if not self.database_url:
                raise ValueError("DATABASE_URL is required in production")
        return self

    @property
    def db_timeouts(self) -> Timeouts:
        return Timeouts(
            statement=self.db_statement_timeout,
            lock=self.db_lock_timeout,
            idle_in_transaction=self.db_idle_in_transaction_timeout,
        )

    @property
    def production(self) -> bool:
        return self.env is Env.PRODUCTION

    @property
    def json_logs(self) -> bool:
        return self.production if self.log_json is None else self.log_json

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def relay(self) -> RelaySettings:
        """The SMTP relay that mail leaves through."""
        password = self.smtp_password.get_secret_value() if self.smtp_password else None
        return RelaySettings(
            self.smtp_host, self.smtp_port, self.smtp_username or None, password, self.smtp_tls
        )

    @property
    def bounce_host(self) -> str:
        """Where sending domains' return paths point (RETURN_PATH_HOST, or PUBLIC_URL's host)."""
        return self.return_path_host or urlsplit(self.base_url).hostname or self.host

    def sending_dns(self) -> DnsSettings:
        """What sending domains' DNS records point at."""
        return DnsSettings(
            relay_host=self.smtp_host, return_path_host=self.bounce_host,
            spf_include=self.spf_include, ed25519=self.dkim_ed25519,
        )  # fmt: skip

    def dns_checks(self) -> Resolver:
        """Where the DNS checks ask, how long they wait, and the relay's address for PTR."""
        return Resolver(self.dns_resolver, self.dns_timeout, self.relay_ip)

    def tracking_rules(self) -> machines.Rules:
        """How machine opens and clicks are told apart: the built-in proxy ranges, and the
        operator's CSV of more (TRACKING_PROXY_RANGES)."""
        ranges = machines.ProxyRanges.builtin()
        if self.tracking_proxy_ranges is not None:
            text = self.tracking_proxy_ranges.read_text(encoding="utf-8", errors="replace")
            ranges = ranges.merged(machines.ProxyRanges.from_csv(text))
        return machines.Rules(ranges)

    def secret(self) -> str:
        """The signing secret; in development one is made once and kept in DATA_DIR."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

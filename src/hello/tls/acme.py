"""Automatic HTTPS: certificates from an ACME CA (RFC 8555), ordered, renewed and swapped in.

The listeners start at once: with no usable stored certificate they serve a self-signed
stand-in while the first order runs. Orders prove each name with http-01 on the plain-HTTP
listeners (TLS-ALPN-01 would need the handshake to present a special certificate for the
``acme-tls/1`` protocol, which Python's ssl module cannot do: its ALPN choice comes after the
certificate). certbot's ``acme`` package speaks the protocol; it blocks, so it runs on a
thread of its own. One process per state directory orders (a lock file decides); every
process picks the new files up through the certificate reloader.

Renewal is due when a third of the lifetime remains (or ``--acme-renew-days``), or earlier
when the CA's renewal information (ARI) says so. Failures are retried with exponential
backoff and jitter, and logged with the days the current certificate has left; it goes on
being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from hello.config import Settings
from hello.tls.store import CertificateStore, StoredCertificate, describe, private_key_pem

log = logging.getLogger("hello")

T = TypeVar("T")

USER_AGENT = "hello (+ACME via certbot's acme)"
ORDER_DEADLINE = datetime.timedelta(seconds=90)
CHECK_INTERVAL = 6 * 3600.0  # at most this long between looks at the renewal time (and ARI)
LOCK_RETRY = 30.0  # a process without the lock asks again this often
RENEW_AGAIN_AFTER = 3600.0  # never order twice within this, whatever the window says
BACKOFF_FIRST = 60.0
BACKOFF_MAX = 86400.0


class AcmeError(Exception):
    """The CA refused or could not be reached; the message says what happened."""


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes
    key_pem: bytes


class AcmeIssuer:
    """One ACME account and the orders made with it (blocking calls: run off the loop)."""

    def __init__(self, settings: Settings, store: CertificateStore) -> None:
        self.settings = settings
        self.store = store
        self._client: client.ClientV2 | None = None
        self._account_key: JWKEC | None = None

    def issue(self, domains: frozenset[str]) -> Issued:
        acme, account_key = self._connect()
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = private_key_pem(key)
        order = acme.new_order(crypto_util.make_csr(key_pem, sorted(domains)))
        published: list[str] = []
        try:
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue
                challenge = _http01(authorization)
                response, validation = challenge.response_and_validation(account_key)
                token = challenge.chall.encode("token")
                self.store.publish_challenge(token, validation)
                published.append(token)
                acme.answer_challenge(challenge, response)
            deadline = datetime.datetime.now() + ORDER_DEADLINE
            order = acme.poll_and_finalize(order, deadline)
        finally:
            for token in published:
                self.store.withdraw_challenge(token)
        if not order.fullchain_pem:
            raise AcmeError("the CA finalized the order but sent no certificate")
        return Issued(order.fullchain_pem.encode(), key_pem)

    def renewal_time(self, cert_pem: bytes) -> datetime.datetime | None:
        """When the CA's renewal information suggests renewing; None if it gives none."""
        acme, _ = self._connect()
        suggested, _ = acme.renewal_time(cert_pem)
        if suggested is None:
            return None
        if suggested.tzinfo is None:
            suggested = suggested.astimezone()
        return suggested

    def _connect(self) -> tuple[client.ClientV2, JWKEC]:
        if self._client is not None and self._account_key is not None:
            return self._client, self._account_key
        account_key = JWKEC(key=self._load_account_key())
        # requests takes a CA bundle's path where acme's signature says bool.
        verify = str(self.settings.acme_ca_bundle) if self.settings.acme_ca_bundle else True
        network = client.ClientNetwork(
            account_key, alg=ES256, verify_ssl=cast(bool, verify), user_agent=USER_AGENT
        )
        directory = client.ClientV2.get_directory(self.settings.acme_directory, network)
        acme = client.ClientV2(directory, net=network)
        registration = messages.NewRegistration.from_data(
            email=self.settings.acme_email, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
            log.info("ACME: new account at %s", self.settings.acme_directory)
        except errors.ConflictError as existing:  # this key's account already exists
            network.account = messages.RegistrationResource(
                uri=existing.location, body=messages.Registration()
            )
        self._client, self._account_key = acme, account_key
        return acme, account_key

    def _load_account_key(self) -> ec.EllipticCurvePrivateKey:
        path = self.store.account_key
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key
            log.warning("ACME: %s is not an EC private key; making a new account key", path)
        key = ec.generate_private_key(ec.SECP256R1())
        self.store.write(path, private_key_pem(key))
        return key


def _http01(authorization: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authorization.body.challenges:
        if isinstance(challenge.chall, challenges.HTTP01):
            return challenge
    name = authorization.body.identifier.value
    raise AcmeError(f"the CA offers no http-01 challenge for {name}")


def prepare(settings: Settings) -> Settings:
    """Make the state directory ready and something to serve; ``settings`` serving it."""
    store = CertificateStore(settings.state_dir)
    store.prepare()
    domains = frozenset(settings.acme_domain)
    current = store.load(domains)
    if current is None:
        store.save_temporary(domains)
        log.info("ACME: a temporary self-signed certificate is served until the CA issues one")
    elif not current.self_signed:
        log.info(
            "ACME: serving the stored certificate for %s, valid until %s",
            ", ".join(sorted(domains)),
            current.not_after.isoformat(timespec="seconds"),
        )
    sources = dict(settings.sources)
    sources["certfile"] = sources["keyfile"] = f"--state-dir {settings.state_dir}:"
    return dataclasses.replace(
        settings, certfile=store.certfile, keyfile=store.keyfile, sources=sources
    )


class AcmeManager:
    """Keeps the stored certificate valid: the loop one worker runs for the whole process."""

    def __init__(
        self, settings: Settings, store: CertificateStore, issuer: AcmeIssuer | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.domains = frozenset(settings.acme_domain)
        self.issuer = issuer or AcmeIssuer(settings, store)
        self.failures = 0
        self.announced: datetime.datetime | None = None

    async def run(self, installed: Callable[[], object]) -> None:
        """Order whenever renewal is due; ``installed`` is called after each new pair."""
        while not self.store.take_lock():
            await asyncio.sleep(LOCK_RETRY)
        while True:
            current = self.store.load(self.domains)
            wait = await self._seconds_until_due(current)
            if wait > 0:
                self._announce(wait)
                await asyncio.sleep(min(wait, CHECK_INTERVAL))
                continue
            try:
                issued = await _off_loop(self.issuer.issue, self.domains)
            except Exception as error:  # the network, the CA, its answers: none may stop serving
                await asyncio.sleep(self._failed(error, current))
                continue
            self.failures = 0
            self.store.save_pair(issued.chain_pem, issued.key_pem)
            fresh = describe(issued.chain_pem)
            log.info(
                "ACME: new certificate for %s, valid until %s",
                ", ".join(sorted(self.domains)),
                fresh.not_after.isoformat(timespec="seconds"),
            )
            installed()
            await asyncio.sleep(RENEW_AGAIN_AFTER)

    def _announce(self, wait: float) -> None:
        due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=wait)
        due = due.replace(microsecond=0)
        if due != self.announced:
            log.info("ACME: renewal due at %s", due.isoformat())
            self.announced = due

    async def _seconds_until_due(self, current: StoredCertificate | None) -> float:
        if current is None or current.self_signed:
            return 0.0
        lifetime = current.not_after - current.not_before
        if self.settings.acme_renew_days:
            due = current.not_after - datetime.timedelta(days=self.settings.acme_renew_days)
        else:
            due = current.not_after - lifetime / 3
        try:
            suggested = await _off_loop(self.issuer.renewal_time, current.pem)
        except Exception as error:
            log.debug("ACME: no renewal information (%s)", _one_line(error))
            suggested = None
        if suggested is not None and suggested < due:
            log.info("ACME: the CA asks for renewal at %s", suggested.isoformat())
            due = suggested
        return (due - datetime.datetime.now(datetime.UTC)).total_seconds()

    def _failed(self, error: BaseException, current: StoredCertificate | None) -> float:
        """Log the failure loudly; the seconds to wait before the next attempt."""
        self.failures += 1
        delay = min(BACKOFF_FIRST * 2.0 ** (self.failures - 1), BACKOFF_MAX)
        delay *= random.uniform(0.8, 1.2)
        if current is None or current.self_signed:
            serving = "serving a temporary self-signed certificate"
        else:
            days = current.days_left(datetime.datetime.now(datetime.UTC))
            serving = f"still serving the current certificate, which expires in {days:.1f} days"
        log.error(
            "ACME: no certificate for %s from %s (attempt %d: %s); %s; next attempt in %.0f s",
            ", ".join(sorted(self.domains)),
            self.settings.acme_directory,
            self.failures,
            _one_line(error),
            serving,
            delay,
        )
        return delay


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"


async def _off_loop(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` on a daemon thread: a slow CA never holds up the loop or an exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def call() -> None:
        result: T | None = None
        failure: BaseException | None = None
        try:
            result = function(*args)
        except BaseException as error:
            failure = error
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, future, result, failure)

    threading.Thread(target=call, name="hello-acme", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(cast(T, result))

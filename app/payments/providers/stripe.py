"""The Stripe payment provider: PaymentIntents through the official SDK's async services.

One :class:`stripe.StripeClient` per provider, pinned to :data:`API_VERSION` (the version this
SDK release was generated for: its typed params match it, and mypy checks every request against
them). ``api_base`` points it elsewhere (localstripe in tests and development).

Rules it keeps, as the sandbox does:

- a decline is a ``DECLINED`` result (``stripe.CardError`` never escapes); other refusals are
  :class:`PaymentError` with a stable code; no answer (connection error, timeout, Stripe 5xx) is
  :class:`ProviderTimeout`, resolved with ``get_transaction`` or by repeating the call with the same key;
- every mutating call carries the caller's idempotency key (helper calls a key derived from it:
  ``<key>:payment_method``), so Stripe replays instead of moving money twice;
- raw card numbers (:class:`CardDetails`) are only turned into a PaymentMethod with a test key;
- ``raw`` is an allow-listed copy of the PaymentIntent (no ``client_secret``, no card data).

``localstripe=True`` leaves out the request parameters localstripe 1.15 rejects and that move no
money (``return_url``, ``description``, ``allowed_payment_method_types``, a refund's ``reason``);
Connect parameters are always sent: a test server that refuses them fails loudly instead.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

import stripe
from stripe.params import (
    AccountCreateParams,
    CustomerCreateParams,
    DisputeUpdateParams,
    DisputeUpdateParamsEvidence,
    PaymentIntentCaptureParams,
    PaymentIntentCreateParams,
    PaymentMethodCreateParams,
    RefundCreateParams,
    TransferCreateParams,
)

from app.core.money import Money
from app.payments import signing
from app.payments.capabilities import (
    ConnectedAccount,
    DisputeEvidence,
    DisputeSubmission,
    OnboardingLink,
    Payout,
    Transfer,
)
from app.payments.provider import (
    AuthorizeRequest,
    CaptureRequest,
    PaymentError,
    PaymentStatus,
    ProviderResult,
    RefundRequest,
    VoidRequest,
    WebhookEvent,
)
from app.payments.providers._stripe_results import (
    account_from,
    declined_result,
    error_body,
    intent_result,
    payment_error,
    payout_from,
    transfer_from,
)

__all__ = ["API_VERSION", "StripeProvider"]

# The API version stripe-python 16.1.0 is generated for; change it only together with the SDK pin.
API_VERSION = "2026-10-28.endive"

_EXPAND = ["latest_charge", "payment_method"]
_REFUND_REASONS = {
    "duplicate": "duplicate",
    "fraud": "fraudulent",
    "fraudulent": "fraudulent",
    "requested_by_customer": "requested_by_customer",
    "customer_request": "requested_by_customer",
}
_METADATA_VALUE_MAX = 500


def _stripe_refund_reason(reason: str) -> str:
    """Stripe's enum for our free-text reason, or "" when none fits (the text still goes in metadata)."""
    return _REFUND_REASONS.get("_".join(reason.lower().replace("-", " ").split()), "")


def _dispute_evidence(evidence: DisputeEvidence) -> DisputeUpdateParamsEvidence:
    """Stripe's evidence hash, only the fields we have (an empty string would clear one)."""
    params: DisputeUpdateParamsEvidence = {}
    if evidence.customer_name:
        params["customer_name"] = evidence.customer_name
    if evidence.customer_email_address:
        params["customer_email_address"] = evidence.customer_email_address
    if evidence.billing_address:
        params["billing_address"] = evidence.billing_address
    if evidence.shipping_address:
        params["shipping_address"] = evidence.shipping_address
    if evidence.shipping_carrier:
        params["shipping_carrier"] = evidence.shipping_carrier
    if evidence.shipping_tracking_number:
        params["shipping_tracking_number"] = evidence.shipping_tracking_number
    if evidence.shipping_date:
        params["shipping_date"] = evidence.shipping_date
    if evidence.product_description:
        params["product_description"] = evidence.product_description
    if evidence.uncategorized_text:
        params["uncategorized_text"] = evidence.uncategorized_text
    return params


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, sending the form-encoded body as ``content=``: stripe-python 16.1 passes it
    as ``data=<str>``, which httpx 0.28 deprecates (a DeprecationWarning on every POST)."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Mapping[str, str], post_data: Any) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]


def _check_amount(amount: Money) -> None:
    if amount.amount_minor <= 0:
        raise PaymentError("invalid_amount", f"amount must be positive, got {amount.amount_minor}")


class StripeProvider:
    """PaymentProvider + SupportsCustomers + SupportsConnect + SupportsDisputes on Stripe (see the module docstring)."""

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str,
        api_base: str | None = None,
        name: str = "stripe",
        http_client: stripe.HTTPClient | None = None,
        timeout_s: float = 20,
        max_network_retries: int = 2,
        localstripe: bool = False,
    ) -> None:
        self.name = name
        self._live = secret_key.startswith(("sk_live_", "rk_live_"))
        self._webhook_secret = webhook_secret
        self._localstripe = localstripe
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else _HTTPXClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base.rstrip("/")} if api_base else {},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )
        self._v1 = self._client.v1

    @property
    def client(self) -> stripe.StripeClient:
        """The SDK client (its HTTP client, pinned version and base address), for Stripe products beyond
        payments: Terminal (app/pos/readers/stripe_terminal.py)."""
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this provider made (one given to it belongs to the caller)."""
        if self._owns_http:
            await self._http.close_async()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated

    # -- the PaymentProvider interface ---------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> ProviderResult:
        _check_amount(request.amount)
        source = await self._payment_method(request)
        if isinstance(source, ProviderResult):
            return source
        params: PaymentIntentCreateParams = {
            "amount": request.amount.amount_minor,
            "currency": request.amount.currency.lower(),
            "payment_method": source,
            "confirm": True,
            "capture_method": "automatic" if request.capture else "manual",
            "metadata": dict(request.metadata),
            "expand": list(_EXPAND),
        }
        if not self._localstripe:
            params["allowed_payment_method_types"] = ["card"]
            if request.return_url:
                params["return_url"] = request.return_url
            if request.description:
                params["description"] = request.description
        if request.customer_ref:
            params["customer"] = request.customer_ref
        if request.transfer_group:
            params["transfer_group"] = request.transfer_group
        if request.destination_account:
            params["transfer_data"] = {"destination": request.destination_account}
        if request.application_fee is not None:
            if not request.destination_account:
                raise PaymentError("invalid_request", "an application fee needs a destination account")
            if request.application_fee.currency != request.amount.currency:
                raise PaymentError("currency_mismatch", "the application fee is in another currency")
            params["application_fee_amount"] = request.application_fee.amount_minor
        try:
            intent = await self._v1.payment_intents.create_async(params, {"idempotency_key": request.idempotency_key})
        except stripe.CardError as exc:
            return await self._declined(exc, request.amount)
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return intent_result(intent.to_dict())

    async def capture(self, request: CaptureRequest) -> ProviderResult:
        _check_amount(request.amount)
        params: PaymentIntentCaptureParams = {
            "amount_to_capture": request.amount.amount_minor,
            "expand": list(_EXPAND),
        }
        try:
            intent = await self._v1.payment_intents.capture_async(
                request.provider_ref, params, {"idempotency_key": request.idempotency_key}
            )
        except stripe.InvalidRequestError as exc:
            raise await self._diagnose(exc, request.provider_ref, capture=request.amount) from exc
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=request.provider_ref) from exc
        return intent_result(intent.to_dict())

    async def void(self, request: VoidRequest) -> ProviderResult:
        try:
            intent = await self._v1.payment_intents.cancel_async(
                request.provider_ref, {"expand": list(_EXPAND)}, {"idempotency_key": request.idempotency_key}
            )
        except stripe.InvalidRequestError as exc:
            raise await self._diagnose(exc, request.provider_ref) from exc
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=request.provider_ref) from exc
        return intent_result(intent.to_dict())

    async def refund(self, request: RefundRequest) -> ProviderResult:
        """Refund part of what was captured. Checked against the payment first (localstripe does not
        refuse over-refunds); a retry of a refund that already went through is answered, not refused."""
        ref = request.provider_ref
        _check_amount(request.amount)
        before = await self.get_transaction(ref)
        refund_id = ""
        if request.amount.currency != before.amount.currency:
            raise PaymentError("currency_mismatch", f"payment is in {before.amount.currency}", provider_ref=ref)
        refundable = before.captured.amount_minor - before.refunded.amount_minor
        if before.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED) or request.amount.amount_minor > (
            refundable
        ):
            refund_id = await self._refund_made_with(ref, request.idempotency_key)
            if not refund_id and before.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
                raise PaymentError(
                    "invalid_state", f"cannot refund a payment that is {before.status}", provider_ref=ref
                )
            if not refund_id:
                raise PaymentError(
                    "amount_too_large",
                    f"refund {request.amount.amount_minor} exceeds the refundable {refundable}",
                    provider_ref=ref,
                )
        if not refund_id:
            refund_id = await self._create_refund(request)
        after = await self._retrieve(ref)
        return intent_result(after, refund_id=refund_id, refund_amount=request.amount.amount_minor)

    async def get_transaction(self, provider_ref: str) -> ProviderResult:
        return intent_result(await self._retrieve(provider_ref))

    def verify_webhook(self, payload: bytes, signature_header: str, *, now: int | None = None) -> WebhookEvent:
        """Stripe's signature check (the SDK's), 300 s either side of ``now``; then the event's shape.

        Raises ``signing.InvalidSignature`` for a missing, wrong or stale signature and ValueError for
        a signed body that is not an event.
        """
        if not signature_header or not signature_header.strip():
            raise signing.InvalidSignature("missing signature")
        try:
            stripe.WebhookSignature.verify_header(payload, signature_header, self._webhook_secret, tolerance=None)
        except UnicodeDecodeError as exc:
            raise signing.InvalidSignature("no matching signature") from exc
        except stripe.SignatureVerificationError as exc:
            text = str(exc)
            reason = (
                "malformed signature header"
                if "Unable to extract" in text
                else "missing signature"
                if "No signatures found with expected scheme" in text
                else "no matching signature"
            )
            raise signing.InvalidSignature(reason) from exc
        timestamp = next(int(v) for k, _, v in (i.partition("=") for i in signature_header.split(",")) if k == "t")
        current = int(time.time()) if now is None else now
        if abs(current - timestamp) > signing.DEFAULT_TOLERANCE_S:
            raise signing.InvalidSignature("timestamp outside the tolerance")
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError("malformed webhook payload: not JSON") from exc
        if not (
            isinstance(body, dict)
            and isinstance(body.get("id"), str)
            and isinstance(body.get("type"), str)
            and isinstance(body.get("created"), int)
            and isinstance(body.get("data"), dict)
        ):
            raise ValueError("malformed webhook payload: needs id, type, created and data")
        return WebhookEvent(id=body["id"], type=body["type"], created=body["created"], data=body["data"])

    # -- SupportsCustomers -----------------------------------------------------------------------

    async def ensure_customer(self, *, email: str, name: str, existing_ref: str, idempotency_key: str) -> str:
        if existing_ref:
            try:
                customer = (await self._v1.customers.retrieve_async(existing_ref)).to_dict()
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise payment_error(exc, missing="unknown_customer") from exc
            except stripe.StripeError as exc:
                raise payment_error(exc, missing="unknown_customer") from exc
            else:
                if not customer.get("deleted"):
                    return str(customer["id"])
        params: CustomerCreateParams = {"email": email, "name": name}
        try:
            created = await self._v1.customers.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return str(created.id)

    # -- SupportsConnect -------------------------------------------------------------------------

    async def create_account(self, *, email: str, country: str, idempotency_key: str) -> ConnectedAccount:
        params: AccountCreateParams = {
            "type": "express",
            "email": email,
            "country": country.upper(),
            "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        }
        try:
            account = await self._v1.accounts.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return account_from(account.to_dict())

    async def onboarding_link(self, account_id: str, *, refresh_url: str, return_url: str) -> OnboardingLink:
        try:
            link = await self._v1.account_links.create_async(
                {
                    "account": account_id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            )
        except stripe.StripeError as exc:
            raise payment_error(exc, missing="unknown_account") from exc
        return OnboardingLink(url=link.url, expires_at=link.expires_at)

    async def get_account(self, account_id: str) -> ConnectedAccount:
        try:
            account = await self._v1.accounts.retrieve_async(account_id)
        except stripe.StripeError as exc:
            raise payment_error(exc, missing="unknown_account") from exc
        return account_from(account.to_dict())

    async def create_transfer(
        self, *, amount: Money, destination: str, transfer_group: str, idempotency_key: str, source_ref: str = ""
    ) -> Transfer:
        _check_amount(amount)
        params: TransferCreateParams = {
            "amount": amount.amount_minor,
            "currency": amount.currency.lower(),
            "destination": destination,
        }
        if transfer_group:
            params["transfer_group"] = transfer_group
        if source_ref:
            params["source_transaction"] = await self._charge_of(source_ref)
        try:
            transfer = await self._v1.transfers.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise payment_error(exc, missing="unknown_account") from exc
        return transfer_from(transfer.to_dict())

    async def list_payouts(self, account_id: str, *, limit: int = 20) -> list[Payout]:
        try:
            page = await self._v1.payouts.list_async({"limit": limit}, {"stripe_account": account_id})
        except stripe.StripeError as exc:
            raise payment_error(exc, missing="unknown_account") from exc
        payouts = [payout_from(item.to_dict()) for item in page.data]
        return sorted(payouts, key=lambda payout: payout.created, reverse=True)

    # -- SupportsDisputes ------------------------------------------------------------------------

    async def submit_dispute_evidence(
        self, dispute_id: str, evidence: DisputeEvidence, submit: bool = True
    ) -> DisputeSubmission:
        """``POST /v1/disputes/{id}`` with the evidence (and ``submit``); keyed by the dispute and the evidence,
        so a retry replays. localstripe has no disputes: tested against recorded fixtures."""
        params: DisputeUpdateParams = {"evidence": _dispute_evidence(evidence), "submit": submit}
        digest = hashlib.sha256(json.dumps([evidence.fields(), submit], sort_keys=True).encode()).hexdigest()[:32]
        try:
            dispute = await self._v1.disputes.update_async(
                dispute_id, params, {"idempotency_key": f"dispute:{dispute_id}:evidence:{digest}"}
            )
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=dispute_id, missing="unknown_dispute") from exc
        body = dispute.to_dict()
        return DisputeSubmission(
            dispute_id=str(body.get("id") or dispute_id), status=str(body.get("status") or ""), submitted=submit
        )

    # -- internals -------------------------------------------------------------------------------

    async def _payment_method(self, request: AuthorizeRequest) -> str | ProviderResult:
        """The PaymentMethod to confirm with: the caller's token, or one made from a test card."""
        if request.card is not None and request.payment_method_token is not None:
            raise PaymentError("invalid_request", "give either a card or a payment method token, not both")
        if request.payment_method_token is not None:
            return request.payment_method_token
        card = request.card
        if card is None:
            raise PaymentError("missing_payment_method", "a card or a payment method token is required")
        if self._live:
            raise PaymentError("raw_card_refused", "raw card numbers are only accepted with a Stripe test key")
        params: PaymentMethodCreateParams = {
            "type": "card",
            "card": {
                "number": "".join(ch for ch in card.number if ch.isdigit()),
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "cvc": card.cvc,
            },
        }
        if card.holder:
            params["billing_details"] = {"name": card.holder}
        try:
            method = await self._v1.payment_methods.create_async(
                params, {"idempotency_key": f"{request.idempotency_key}:payment_method"}
            )
        except stripe.CardError as exc:
            return declined_result(exc, request.amount)
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return str(method.id)

    async def _declined(self, exc: stripe.CardError, amount: Money) -> ProviderResult:
        """The declined PaymentIntent, read back (Stripe names it in the error; localstripe names its charge)."""
        body = error_body(exc)
        intent = body.get("payment_intent")
        ref = str(intent.get("id") or "") if isinstance(intent, dict) else ""
        if not ref and body.get("charge"):
            try:
                charge = await self._v1.charges.retrieve_async(str(body["charge"]))
            except stripe.StripeError as retrieve_exc:
                raise payment_error(retrieve_exc) from retrieve_exc
            ref = str(charge.to_dict().get("payment_intent") or "")
        if not ref:
            return declined_result(exc, amount)
        return intent_result(await self._retrieve(ref))

    async def _diagnose(
        self, exc: stripe.InvalidRequestError, ref: str, *, capture: Money | None = None
    ) -> PaymentError:
        """A refused capture or void, with our code: Stripe's when it gave a known one, else read from
        the payment's state (localstripe answers a bare 400)."""
        known = payment_error(exc, ref=ref)
        if known.code != "invalid_request":
            return known
        try:
            current = intent_result(await self._retrieve(ref))
        except PaymentError:
            return known
        if capture is not None:
            if current.status is not PaymentStatus.AUTHORIZED:
                return PaymentError(
                    "invalid_state", f"cannot capture a payment that is {current.status}", provider_ref=ref
                )
            if capture.currency != current.amount.currency:
                return PaymentError("currency_mismatch", f"payment is in {current.amount.currency}", provider_ref=ref)
            if capture.amount_minor > current.amount.amount_minor:
                return PaymentError("amount_too_large", known.message, provider_ref=ref)
            return known
        if current.status not in (PaymentStatus.AUTHORIZED, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING):
            return PaymentError("invalid_state", f"cannot void a payment that is {current.status}", provider_ref=ref)
        return known

    async def _retrieve(self, ref: str) -> dict[str, Any]:
        try:
            intent = await self._v1.payment_intents.retrieve_async(ref, {"expand": list(_EXPAND)})
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=ref) from exc
        return intent.to_dict()

    async def _create_refund(self, request: RefundRequest) -> str:
        metadata = {"idempotency_key": request.idempotency_key[:_METADATA_VALUE_MAX]}
        if request.reason:
            metadata["reason"] = request.reason[:_METADATA_VALUE_MAX]
        params: RefundCreateParams = {
            "payment_intent": request.provider_ref,
            "amount": request.amount.amount_minor,
            "metadata": metadata,
        }
        if request.reason:
            reason = _stripe_refund_reason(request.reason)
            if reason and not self._localstripe:
                params["reason"] = reason
        try:
            refund = await self._v1.refunds.create_async(params, {"idempotency_key": request.idempotency_key})
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=request.provider_ref) from exc
        return str(refund.id)

    async def _refund_made_with(self, ref: str, idempotency_key: str) -> str:
        """The refund an earlier call with this key made (its key is in the refund's metadata), or ""."""
        try:
            page = await self._v1.refunds.list_async({"payment_intent": ref, "limit": 100})
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=ref) from exc
        for refund in page.data:
            metadata = refund.to_dict().get("metadata") or {}
            if metadata.get("idempotency_key") == idempotency_key[:_METADATA_VALUE_MAX]:
                return str(refund.id)
        return ""

    async def _charge_of(self, source_ref: str) -> str:
        """A transfer's ``source_transaction`` is a charge: a PaymentIntent reference becomes its latest charge."""
        if not source_ref.startswith("pi_"):
            return source_ref
        intent = await self._retrieve(source_ref)
        charge = intent.get("latest_charge")
        charge_id = str(charge.get("id") or "") if isinstance(charge, dict) else str(charge or "")
        if not charge_id:
            raise PaymentError("invalid_state", "the payment has no charge to transfer from", provider_ref=source_ref)
        return charge_id

"""Every model, imported once so Alembic and the mappers see the whole schema."""

from app.cart.models import Cart, CartLine
from app.catalog.models import Category, Product, Variant
from app.checkout.models import CheckoutAttempt, CheckoutSnapshot
from app.core.audit import AuditEntry
from app.core.idempotency import IdempotencyKey
from app.core.kill_switches import KillSwitch, KillSwitchChange
from app.core.outbox import OutboxEvent
from app.customers.models import Customer
from app.disputes.models import Dispute, DisputeEvidence
from app.ingestion.models import IngestedOrder, IngestionAttempt, IngestionSecret
from app.inventory.models import Location, Reservation, StockLevel, StockMovement
from app.media.models import MediaAsset, MediaQuota
from app.notifications.models import OutboundMessage
from app.orders.models import Order, OrderLine, OrderStatusChange
from app.payments.credentials import ProviderCredential
from app.payments.models import PaymentIntent, PaymentTransaction
from app.pos.models import (
    CardReader,
    CashMovement,
    PosRefund,
    PosSale,
    PosTender,
    PosVoid,
    ReaderPayment,
    Register,
    Shift,
)
from app.promotions.models import Promotion, PromotionCustomerUse, PromotionRedemption
from app.receipts.models import Receipt, ReceiptAttempt, ReceiptDelivery, ReceiptPrinter, WhatsAppStatusEvent
from app.reconciliation.models import ProviderCall, ReconciliationDrift, ReconciliationRun
from app.stored_value.loyalty.models import LoyaltyAccrual, LoyaltyIntegrityRun, LoyaltyMember, LoyaltyProgram
from app.stored_value.models import StoredValueAccount, StoredValueEntry, StoredValueHold
from app.stores.models import ApiToken, Membership, PasswordReset, StaffInvitation, Store, StoreLogo, User
from app.webhooks.models import ConsumerReceipt, WebhookEventRow

__all__ = [
    "ApiToken",
    "AuditEntry",
    "CardReader",
    "Cart",
    "CartLine",
    "CashMovement",
    "Category",
    "CheckoutAttempt",
    "CheckoutSnapshot",
    "ConsumerReceipt",
    "Customer",
    "Dispute",
    "DisputeEvidence",
    "IdempotencyKey",
    "IngestedOrder",
    "IngestionAttempt",
    "IngestionSecret",
    "KillSwitch",
    "KillSwitchChange",
    "Location",
    "LoyaltyAccrual",
    "LoyaltyIntegrityRun",
    "LoyaltyMember",
    "LoyaltyProgram",
    "MediaAsset",
    "MediaQuota",
    "Membership",
    "Order",
    "OrderLine",
    "OrderStatusChange",
    "OutboundMessage",
    "OutboxEvent",
    "PasswordReset",
    "PaymentIntent",
    "PaymentTransaction",
    "PosRefund",
    "PosSale",
    "PosTender",
    "PosVoid",
    "Product",
    "Promotion",
    "PromotionCustomerUse",
    "PromotionRedemption",
    "ProviderCall",
    "ProviderCredential",
    "ReaderPayment",
    "Receipt",
    "ReceiptAttempt",
    "ReceiptDelivery",
    "ReceiptPrinter",
    "ReconciliationDrift",
    "ReconciliationRun",
    "Register",
    "Reservation",
    "Shift",
    "StaffInvitation",
    "StockLevel",
    "StockMovement",
    "Store",
    "StoreLogo",
    "StoredValueAccount",
    "StoredValueEntry",
    "StoredValueHold",
    "User",
    "Variant",
    "WebhookEventRow",
    "WhatsAppStatusEvent",
]

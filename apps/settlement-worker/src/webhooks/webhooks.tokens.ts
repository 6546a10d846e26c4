/** Job scheduler id of the repeatable `webhook.sweep`. */
export const WEBHOOK_SWEEP_SCHEDULER_ID = 'webhook-sweep';
/** The DeliverySlots of the process (per-endpoint and per-tenant limits of delivery attempts, across workers). */
export const WEBHOOK_DELIVERY_SLOTS = Symbol('WEBHOOK_DELIVERY_SLOTS');

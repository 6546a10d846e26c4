export const WEBHOOK_SECRET_BOX = Symbol('WEBHOOK_SECRET_BOX');
/** Job scheduler id of the repeatable `webhook.sweep`. */
export const WEBHOOK_SWEEP_SCHEDULER_ID = 'webhook-sweep';

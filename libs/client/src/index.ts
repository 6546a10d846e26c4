export { createPayorchClient, paginate, PayorchApiError, type PayorchApi, type PayorchClientOptions, type Schemas, unwrap } from './client';
export { EventStream, type EventStreamOptions, type PayorchEvent } from './events';
export type { components, operations, paths } from './generated/openapi';
export { verifyWebhookSignature } from './webhooks';

import type { Request } from 'express';

import type { TenantContext } from '@payorch/domain';

/** What the middleware and guards attach to an Express request. */
export interface PayorchRequest extends Request {
  requestId: string;
  tenant?: TenantContext;
  apiKey?: { id: string; scopes: string[] };
}

import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

import { ApiError } from '@payorch/domain';

import type { PayorchRequest } from '../common/request-context';

/** The scopes of the API key that authenticated the request (what it may grant to a new key). */
export const CallerScopes = createParamDecorator((_data: unknown, context: ExecutionContext): readonly string[] => {
  const req = context.switchToHttp().getRequest<PayorchRequest>();
  if (!req.apiKey) throw new ApiError('UNAUTHENTICATED', 'authentication required');
  return req.apiKey.scopes;
});

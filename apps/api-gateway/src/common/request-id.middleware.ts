import { randomUUID } from 'node:crypto';

import type { NextFunction, Response } from 'express';

import type { PayorchRequest } from './request-context';

const ACCEPTED = /^[A-Za-z0-9._:-]{8,128}$/;

/** Takes a well-formed `X-Request-Id` from the caller or makes one; echoes it on the response. */
export function requestIdMiddleware(req: PayorchRequest, res: Response, next: NextFunction): void {
  const given = req.header('x-request-id');
  req.requestId = given && ACCEPTED.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', req.requestId);
  next();
}

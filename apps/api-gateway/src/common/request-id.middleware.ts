import { randomUUID } from 'node:crypto';

import type { NextFunction, Response } from 'express';

import type { PayorchRequest } from './request-context';

const ACCEPTED = /^[A-Za-z0-9._:-]{8,128}$/;

/** The caller's `X-Request-Id` when well-formed, otherwise a new one. */
export function requestIdOf(given: string | string[] | undefined): string {
  return typeof given === 'string' && ACCEPTED.test(given) ? given : randomUUID();
}

/** Takes a well-formed `X-Request-Id` from the caller or makes one; echoes it on the response. Runs first. */
export function requestIdMiddleware(req: PayorchRequest, res: Response, next: NextFunction): void {
  req.requestId = requestIdOf(req.headers['x-request-id']);
  res.setHeader('X-Request-Id', req.requestId);
  next();
}

import { createHash } from 'node:crypto';

import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor, type OnApplicationShutdown } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { from, type Observable, of, throwError } from 'rxjs';
import { catchError, mergeMap } from 'rxjs/operators';

import type { GatewayConfig } from '@payorch/config';
import { type Database, isDatabaseUnavailable } from '@payorch/db';
import type { IdempotencyRecord } from '@payorch/prisma';
import { ApiError, canonicalJson, type SecretBox } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { IDEMPOTENCY_KEPT_BY_RESOURCE_KEY } from './idempotency-kept-by-resource';
import { ONE_TIME_SECRETS_KEY, splitOneTimeSecrets } from './one-time-secret';
import type { PayorchRequest } from './request-context';
import { DATABASE, GATEWAY_CONFIG, LOGGER, SECRET_BOX } from './tokens';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const KEY_FORMAT = /^[A-Za-z0-9._:-]{8,128}$/;
const RETENTION_MS = 24 * 60 * 60 * 1000;
/** A key write that failed because PostgreSQL is down is retried in the background for this long. */
const SETTLE_RETRY_MS = 5 * 60 * 1000;
const SETTLE_BACKOFF_MS = [250, 500, 1000, 2000, 5000];
/** Retry-After of IDEMPOTENCY_KEY_IN_PROGRESS: the first request usually answers within seconds. */
const IN_PROGRESS_RETRY_AFTER_MAX_SECONDS = 5;
/** Inserts of a claim per request, when a key seen taken is gone again at the read (released meanwhile). */
const CLAIM_ATTEMPTS = 3;

/**
 * `Idempotency-Key` on every mutating call. The first request with a key claims it (a row inserted
 * before the handler runs); a repeat with the same method, path and body gets the stored answer
 * (`Idempotent-Replayed: true`); a repeat with anything different is 409; a repeat while the first
 * is still running is 409 IDEMPOTENCY_KEY_IN_PROGRESS (with Retry-After). A request that fails releases its
 * key, so the client can correct and retry it. Keys are kept 24 hours per tenant. A claim left without an
 * answer for IDEMPOTENCY_CLAIM_LEASE_MS (its gateway died mid-request) is taken over by the next repeat.
 *
 * PostgreSQL outages (issue 15): a claim that cannot be inserted means nothing ran (503, retry with the
 * same key). A handler that failed releases its key; only a failed handler does, never a failed write
 * of the stored answer (the effect is committed: releasing would let a retry run it twice). When the
 * release or the stored answer cannot be written because the database is unavailable, the write is
 * retried in the background until it is back (bounded), so the key becomes retryable, or replays the
 * answer, by itself; meanwhile a repeat gets 409 IDEMPOTENCY_KEY_IN_PROGRESS. A handler whose answer
 * could not be stored still answers 2xx: its effect is durable.
 *
 * The stored answer never holds a secret in clear: fields a route declares with
 * `@ReturnsOneTimeSecrets` are stored as null with `secretWithheld: true` (the first answer carries
 * them and `secretWithheld: false`), and any other non-empty string under a secret-like key is
 * withheld as well and logged as a missing declaration (one-time-secret.ts).
 */
const REQUEST_DIGEST_PURPOSE = 'idempotency request';

@Injectable()
export class IdempotencyInterceptor implements NestInterceptor, OnApplicationShutdown {
  private readonly settling = new Set<NodeJS.Timeout>();
  private readonly leaseMs: number;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    private readonly reflector: Reflector,
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
  ) {
    this.leaseMs = config.IDEMPOTENCY_CLAIM_LEASE_MS;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<PayorchRequest>();
    const res = context.switchToHttp().getResponse<Response>();
    if (!MUTATING.has(req.method) || !req.tenant) return next.handle();
    const key = req.header('idempotency-key');
    if (!key) {
      return throwError(() => new ApiError('IDEMPOTENCY_KEY_REQUIRED', 'the Idempotency-Key header is required on this call'));
    }
    if (!KEY_FORMAT.test(key)) {
      return throwError(
        () =>
          new ApiError('VALIDATION_FAILED', 'Idempotency-Key: 8–128 characters of A-Z a-z 0-9 . _ : -', {
            issues: [{ field: 'Idempotency-Key', message: '8–128 characters of A-Z a-z 0-9 . _ : -' }],
          }),
      );
    }
    if (this.reflector.get<boolean | undefined>(IDEMPOTENCY_KEPT_BY_RESOURCE_KEY, context.getHandler())) return next.handle();
    const tenantId = req.tenant.tenantId;
    const path = req.originalUrl.split('?')[0]!;
    // Keyed (HMAC under the master key): a body holding a short write-only secret (a terminal or
    // Assist password) cannot be guessed offline from the stored digest.
    const request = `${req.method} ${path}\n${canonicalJson(req.body)}`;

    return from(this.claim(tenantId, key, req.method, path, request)).pipe(
      mergeMap((stored) => {
        if (stored) {
          res.status(stored.status);
          res.setHeader('Idempotent-Replayed', 'true');
          return of(stored.body);
        }
        const declared = this.reflector.get<string[] | undefined>(ONE_TIME_SECRETS_KEY, context.getHandler()) ?? [];
        return next.handle().pipe(
          // Only the handler's failure releases the key (below, a failed write of the answer does not).
          catchError((error: unknown) =>
            from(
              this.settle('release', req.requestId, () => this.db.withTenant(tenantId, (tx) => tx.idempotencyRecord.deleteMany({ where: { tenantId, key } }))),
            ).pipe(mergeMap(() => throwError(() => error))),
          ),
          mergeMap(async (body) => {
            const { sent, stored: kept, undeclared } = splitOneTimeSecrets(body, declared);
            if (undeclared.length > 0) {
              this.logger.error(
                { requestId: req.requestId, path, fields: undeclared },
                'secret-like response fields withheld from the replay cache; declare them with @ReturnsOneTimeSecrets',
              );
            }
            const status = res.statusCode;
            await this.settle('store answer', req.requestId, () =>
              this.db.withTenant(tenantId, (tx) =>
                tx.idempotencyRecord.update({
                  where: { tenantId_key: { tenantId, key } },
                  data: { responseStatus: status, responseBody: kept as never },
                }),
              ),
            );
            return sent;
          }),
        );
      }),
    );
  }

  onApplicationShutdown(): void {
    for (const timer of this.settling) clearTimeout(timer);
    this.settling.clear();
  }

  /**
   * Runs a write of the key's row. If PostgreSQL is unavailable it resolves anyway and retries the write
   * in the background (backoff, for at most SETTLE_RETRY_MS); any other error is thrown.
   */
  private async settle(what: string, requestId: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
    }
    this.logger.warn({ requestId, what }, 'idempotency key write deferred: database unavailable');
    const giveUpAt = Date.now() + SETTLE_RETRY_MS;
    const retry = (attempt: number) => {
      const timer = setTimeout(
        () => {
          this.settling.delete(timer);
          write().then(
            () => this.logger.info({ requestId, what, attempts: attempt + 1 }, 'deferred idempotency key write done'),
            (error: unknown) => {
              if (isDatabaseUnavailable(error) && Date.now() < giveUpAt) return retry(attempt + 1);
              this.logger.error({ err: error, requestId, what }, 'deferred idempotency key write abandoned');
            },
          );
        },
        SETTLE_BACKOFF_MS[Math.min(attempt, SETTLE_BACKOFF_MS.length - 1)],
      );
      timer.unref();
      this.settling.add(timer);
    };
    retry(0);
  }

  /** Inserts the claim, or returns the stored answer of an earlier identical request. */
  private async claim(tenantId: string, key: string, method: string, path: string, request: string) {
    const requestHash = this.secrets.digest(REQUEST_DIGEST_PURPOSE, request);
    return this.db.withTenant(tenantId, async (tx) => {
      await tx.idempotencyRecord.deleteMany({ where: { tenantId, key, expiresAt: { lt: new Date() } } });
      // Each statement sees what committed before it (READ COMMITTED): a claim that made this insert skip can be released
      // (its handler failed) before the read below. Then the key is free again: claim it anew. Until 2026-12-07 the read
      // threw Prisma's not-found, a 500, for a double-submitted invalid body.
      let existing: IdempotencyRecord | null = null;
      for (let attempt = 0; existing === null; attempt++) {
        const inserted = await tx.idempotencyRecord.createMany({
          data: [{ tenantId, key, method, path, requestHash, expiresAt: new Date(Date.now() + RETENTION_MS) }],
          skipDuplicates: true,
        });
        if (inserted.count === 1) return null;
        existing = await tx.idempotencyRecord.findUnique({ where: { tenantId_key: { tenantId, key } } });
        if (existing === null && attempt === CLAIM_ATTEMPTS - 1) {
          throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', `a request with Idempotency-Key "${key}" is being claimed and released; retry`, {
            retryAfterSeconds: 1,
          });
        }
      }
      if (!this.sameRequest(request, existing.requestHash)) {
        throw new ApiError('IDEMPOTENCY_KEY_REUSED', `Idempotency-Key "${key}" was already used for a different request (${existing.method} ${existing.path})`);
      }
      if (existing.responseStatus === null) {
        // Abandoned (its gateway died mid-request)? Take it over: a compare-and-set on the claim time, so of
        // several repeats exactly one runs the handler. Money-moving handlers carry the same key in their own
        // rows (operations, wallet payments), so a handler whose effect did commit answers with that effect.
        const now = new Date();
        const taken = await tx.idempotencyRecord.updateMany({
          where: { tenantId, key, responseStatus: null, createdAt: { lt: new Date(now.getTime() - this.leaseMs) } },
          data: { createdAt: now, expiresAt: new Date(now.getTime() + RETENTION_MS) },
        });
        if (taken.count === 1) {
          this.logger.warn({ key, claimedAt: existing.createdAt.toISOString() }, 'idempotency key abandoned mid-request: taken over by its repeat');
          return null;
        }
        const retryAfterSeconds = Math.max(1, Math.ceil((existing.createdAt.getTime() + this.leaseMs - now.getTime()) / 1000));
        throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', `a request with Idempotency-Key "${key}" is still being processed`, {
          retryAfterSeconds: Math.min(retryAfterSeconds, IN_PROGRESS_RETRY_AFTER_MAX_SECONDS),
        });
      }
      return { status: existing.responseStatus, body: existing.responseBody };
    });
  }

  /** Keyed digest match; a plain SHA-256 stored before keyed digests existed (kept ≤ 24 h) still matches. */
  private sameRequest(request: string, stored: string): boolean {
    if (stored.startsWith('hmac1.')) return this.secrets.matchesDigest(REQUEST_DIGEST_PURPOSE, request, stored);
    return createHash('sha256').update(request).digest('hex') === stored;
  }
}

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WebSocket, WebSocketServer } from 'ws';

import type { GatewayConfig } from '@payorch/config';
import { isDatabaseUnavailable } from '@payorch/db';
import { ApiError, type ApiErrorCode, holdsScope, tokenPrefix } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { ApiKeyLookups } from '../common/api-key-lookups';
import { bearerToken } from '../common/auth.guard';
import { AuthThrottle, keyFailure } from '../common/auth-throttle';
import { DATABASE_RETRY_AFTER_SECONDS, statusOf } from '../common/error.filter';
import { RequestBudget } from '../common/rate-limit.guard';
import { endSocket, rawErrorResponse } from '../common/raw-error';
import { requestIdOf } from '../common/request-id.middleware';
import { GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import { issuesOf } from '../common/zod';
import { streamQuery } from './dto/events.dto';
import { EventsService, wireEvent } from './events.service';
import { KeyWatch } from './key-watch';

export const EVENTS_WS_PATH = '/v1/events/ws';

/**
 * `GET /v1/events/ws` (WebSocket upgrade): the same stream as SSE, one JSON event per text message.
 * Authenticated at the upgrade with `Authorization: Bearer <API key>` holding `events:read`, before
 * `handleUpgrade` (a failure answers 401/403/429 in the error envelope and closes the socket; failures
 * count toward the per-address AuthThrottle like the REST API's). An upgrade spends one request of the key's and the
 * tenant's budgets like any request (RequestBudget: 429 RATE_LIMITED), and takes one of the tenant's stream slots
 * (EventsService.admit: 429 TOO_MANY_STREAMS), given back when the socket closes. Query: `types`, `after`.
 * Liveness: a ping every EVENTS_HEARTBEAT_MS; a client that did not answer the previous one is
 * terminated. A client whose send buffer exceeds EVENTS_CLIENT_BUFFER_BYTES is terminated (1013).
 */
@Injectable()
export class EventsWsServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private server: Server | undefined;
  /**
   * Every request with an Upgrade header comes here (Node hands them all to the server's 'upgrade' listeners), on a
   * socket Node no longer watches for errors. So, before anything else: a socket error ends the socket (a client's
   * reset used to be an unhandled 'error' event, which ended the gateway's process); a request target `URL` cannot
   * parse (`//[/`, accepted by Node's parser) is 400 (it threw in the parser's callback: the same); an upgrade to any
   * other path is 404 — it used to be left unanswered, its socket open for good (an `h2c` upgrade of a REST request
   * hung). All in the error envelope, on the raw socket (test/security/hostile-input.security-spec.ts).
   */
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const requestId = requestIdOf(req.headers['x-request-id']);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return endSocket(socket, rawErrorResponse(400, { code: 'VALIDATION_FAILED', message: 'malformed request target', requestId }));
    }
    if (url.pathname !== EVENTS_WS_PATH) {
      const message = `no WebSocket endpoint at ${url.pathname.slice(0, 200)} (the event stream's is ${EVENTS_WS_PATH}); send other requests without an Upgrade header`;
      return endSocket(socket, rawErrorResponse(404, { code: 'NOT_FOUND', message, requestId }));
    }
    void this.upgrade(req, socket, head, url);
  };

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly events: EventsService,
    private readonly throttle: AuthThrottle,
    private readonly keys: ApiKeyLookups,
    private readonly budget: RequestBudget,
    private readonly keyWatch: KeyWatch,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    this.server?.on('upgrade', this.onUpgrade);
  }

  /**
   * Graceful shutdown, before Nest closes the HTTP server (which would wait for upgraded sockets): no new
   * upgrade, and every client is told to reconnect (1001, to another gateway) and cut if it has not
   * closed within 1 s.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.server?.off('upgrade', this.onUpgrade);
    await Promise.all(
      [...this.wss.clients].map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1001, 'server shutting down; reconnect');
            setTimeout(() => ws.terminate(), 1000).unref();
          }),
      ),
    );
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const requestId = requestIdOf(req.headers['x-request-id']);
    const refuse = (status: number, code: ApiErrorCode, message: string, details?: unknown, headers?: Record<string, string>) =>
      endSocket(socket, rawErrorResponse(status, { code, message, details, requestId }, headers));
    /** A limit's 429 (its details say when to retry). */
    const refuseWith = (error: ApiError) => {
      const retryAfter = (error.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
      return refuse(statusOf(error.code), error.code, error.message, error.details, retryAfter ? { 'Retry-After': String(retryAfter) } : undefined);
    };
    try {
      const address = this.throttle.addressOf(req);
      const retryAfter = await this.throttle.retryAfter(address, requestId);
      if (retryAfter > 0) {
        return refuse(
          429,
          'RATE_LIMITED',
          `too many failed authentications from this address; retry in ${retryAfter}s`,
          { retryAfterSeconds: retryAfter },
          { 'Retry-After': String(retryAfter) },
        );
      }
      const token = bearerToken(req.headers.authorization);
      if (!token) return refuse(401, 'UNAUTHENTICATED', 'missing "Authorization: Bearer <api key>" header');
      const prefix = tokenPrefix(token, 'pok');
      const key = prefix ? await this.keys.find(prefix) : null;
      const failure = keyFailure(token, key, new Date());
      if (failure || !key) {
        await this.throttle.failed(address, requestId, failure ?? 'invalid_key', key ? { id: key.id, tenantId: key.tenantId } : undefined);
        return refuse(401, 'UNAUTHENTICATED', 'invalid, revoked or expired API key');
      }
      if (!holdsScope(key.scopes, 'events:read')) return refuse(403, 'FORBIDDEN', 'API key lacks scope(s): events:read', { missing: ['events:read'] });
      // In the order of the REST API: authenticate, rate-limit, validate.
      const limited = await this.budget.spend({ id: key.id, tenantId: key.tenantId }, requestId);
      if (limited) return refuseWith(limited);
      const query = streamQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!query.success) {
        const issues = issuesOf(query.error);
        return refuse(400, 'VALIDATION_FAILED', `invalid query: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
      }
      let release: () => void;
      try {
        release = this.events.admit({ tenantId: key.tenantId, requestId }, 'websocket');
      } catch (error) {
        if (error instanceof ApiError) return refuseWith(error);
        throw error;
      }
      // The socket's close gives the slot back, however it ends: refused by handleUpgrade, closed by either side. A
      // client gone while it was authenticated closed it already (no 'close' would come).
      if (socket.destroyed) return release();
      socket.once('close', release);
      this.wss.handleUpgrade(req, socket, head, (ws) => void this.serve(ws, key.tenantId, token, query.data.after, query.data.types));
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        this.logger.warn({ requestId }, 'event websocket refused: database unavailable');
        const retryAfterSeconds = DATABASE_RETRY_AFTER_SECONDS;
        return refuse(
          503,
          'SERVICE_UNAVAILABLE',
          'the service is temporarily unavailable (database); retry later',
          { retryAfterSeconds },
          { 'Retry-After': String(retryAfterSeconds) },
        );
      }
      this.logger.error({ err: error, requestId }, 'event websocket upgrade failed');
      refuse(500, 'INTERNAL', 'internal error');
    }
  }

  private async serve(ws: WebSocket, tenantId: string, token: string, after: string | undefined, types: string[] | undefined): Promise<void> {
    // Pings not answered yet: a client is cut when two in a row went unanswered (it had a whole interval for each), not
    // at the first late pong — a busy client or link that answers one ping late keeps its stream.
    let unanswered = 0;
    let stream: { close(): void } | undefined;
    const heartbeat = setInterval(() => {
      if (unanswered >= 2) return ws.terminate();
      unanswered += 1;
      ws.ping();
    }, this.config.EVENTS_HEARTBEAT_MS);
    ws.on('pong', () => (unanswered = 0));
    // A key revoked (expired, its tenant disabled) while the socket is open ends it: 1008, policy violation.
    const unwatch = this.keyWatch.watch(tenantId, token, 'events:read', (reason) => ws.close(1008, reason));
    ws.on('close', () => {
      clearInterval(heartbeat);
      unwatch();
      stream?.close();
    });
    ws.on('error', () => ws.terminate());
    try {
      stream = await this.events.open(
        tenantId,
        { after, types },
        {
          send: (event) => {
            if (ws.readyState !== WebSocket.OPEN) return false;
            ws.send(JSON.stringify(wireEvent(event)));
            if (ws.bufferedAmount > this.config.EVENTS_CLIENT_BUFFER_BYTES) {
              this.logger.warn({ tenantId, buffered: ws.bufferedAmount }, 'slow event websocket client disconnected');
              ws.close(1013, 'too slow');
              ws.terminate();
              return false;
            }
            return true;
          },
          end: (reason) => ws.close(1000, reason.slice(0, 120)),
        },
      );
      if (ws.readyState !== WebSocket.OPEN) stream.close();
    } catch (error) {
      this.logger.error({ err: error, tenantId }, 'event websocket stream failed');
      ws.close(1011, 'internal error');
    }
  }
}

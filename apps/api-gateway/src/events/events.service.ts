import { Inject, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';

import type { GatewayConfig } from '@payorch/config';
import type { Database, PublishedEvent } from '@payorch/db';
import { ApiError, isUuid, type TenantContext } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { DATABASE, GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import type { StreamQuery } from './dto/events.dto';
import { EventHub } from './event-hub';
import { typeMatcher } from './event-types';

/** A transport (SSE response, WebSocket) as seen by the stream logic. */
export interface StreamSink {
  /** Sends one event; false = the client is too slow (its buffer is over the bound) and was disconnected. */
  send(event: PublishedEvent): boolean;
  /** Ends the stream (the client may reconnect with the last id it saw). */
  end(reason: string): void;
}

export interface OpenStream {
  /** Stops listening (call when the client goes away). */
  close(): void;
}

/** The wire form of an event (SSE data / WebSocket message / webhook body without tenant-private fields). */
export function wireEvent(event: PublishedEvent) {
  return {
    id: event.id,
    type: event.type,
    createdAt: event.createdAt,
    tenantId: event.tenantId,
    subjectType: event.subjectType,
    subjectId: event.subjectId,
    data: event.data,
  };
}

/**
 * A tenant's live event stream: first the events after `after` (Last-Event-ID) from the DomainEvent table in
 * (createdAt, id) order, then live ones from Redis pub/sub. The live subscription starts BEFORE the
 * catch-up query, so nothing committed in between is missed; events seen in both are sent once. The
 * catch-up is capped at EVENTS_CATCHUP_LIMIT: past it the stream ends and the client reconnects with the
 * last id it got (EventSource does so by itself), which pages through a long gap.
 */
@Injectable()
export class EventsService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly hub: EventHub,
  ) {}

  async open(tenantId: string, options: { after?: string; types?: readonly string[] }, sink: StreamSink): Promise<OpenStream> {
    const matches = typeMatcher(options.types ?? []);
    const pending: PublishedEvent[] = [];
    const seen = new Set<string>();
    let live = false;
    let closed = false;
    const subscription: { remove?: () => void } = {};
    const stop = () => {
      if (closed) return;
      closed = true;
      subscription.remove?.();
    };
    const forward = (event: PublishedEvent) => {
      if (closed || seen.has(event.id) || !matches(event.type)) return;
      if (!sink.send(event)) stop();
    };
    const remove = await this.hub.add(tenantId, {
      deliver: (event) => {
        if (live) return forward(event);
        pending.push(event);
        // Bounded while catching up too: a flood during a slow catch-up disconnects rather than grows.
        if (pending.length > this.config.EVENTS_CATCHUP_LIMIT) {
          stop();
          sink.end('too many live events while catching up; reconnect with Last-Event-ID');
        }
      },
    });
    subscription.remove = remove;
    if (closed) remove();
    try {
      if (options.after !== undefined) {
        const { rows, truncated } = await this.catchUp(tenantId, options.after, options.types ?? []);
        for (const row of rows) {
          if (closed) break;
          seen.add(row.id);
          if (matches(row.type) && !sink.send(row)) stop();
        }
        if (truncated && !closed) {
          stop();
          sink.end('catch-up limit reached; reconnect with the last event id to continue');
        }
      }
    } catch (error) {
      stop();
      throw error;
    }
    live = true;
    for (const event of pending.splice(0)) forward(event);
    seen.clear();
    return { close: stop };
  }

  /** `GET /v1/events/stream` as Server-Sent Events on the raw Express response. */
  async sse(ctx: TenantContext, query: StreamQuery, lastEventId: string | undefined, req: Request, res: Response): Promise<void> {
    const after = lastEventId?.trim() || query.after;
    if (after !== undefined && !isUuid(after)) {
      throw new ApiError('VALIDATION_FAILED', 'Last-Event-ID: must be an event id (UUID)', { issues: [{ field: 'Last-Event-ID', message: 'must be an event id (UUID)' }] });
    }
    const limit = this.config.EVENTS_CLIENT_BUFFER_BYTES;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      stream?.close();
      res.end();
    };
    const sink: StreamSink = {
      send: (event) => {
        if (ended) return false;
        res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(wireEvent(event))}\n\n`);
        if (res.writableLength > limit) {
          this.logger.warn({ tenantId: ctx.tenantId, requestId: ctx.requestId, buffered: res.writableLength }, 'slow event stream client disconnected');
          ended = true;
          clearInterval(heartbeat);
          stream?.close();
          res.destroy();
          return false;
        }
        return true;
      },
      end: (reason) => {
        if (ended) return;
        res.write(`: ${reason}\n\n`);
        end();
      },
    };
    let stream: OpenStream | undefined;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write(`retry: 2000\n: connected\n\n`);
    const heartbeat = setInterval(() => {
      if (!ended) res.write(`: heartbeat ${new Date().toISOString()}\n\n`);
    }, this.config.EVENTS_HEARTBEAT_MS);
    req.on('close', end);
    try {
      stream = await this.open(ctx.tenantId, { after, types: query.types }, sink);
      if (ended) stream.close();
    } catch (error) {
      this.logger.error({ err: error, tenantId: ctx.tenantId }, 'event stream failed to open');
      sink.end('internal error; reconnect');
    }
  }

  private async catchUp(tenantId: string, after: string, types: readonly string[]): Promise<{ rows: PublishedEvent[]; truncated: boolean }> {
    const limit = this.config.EVENTS_CATCHUP_LIMIT;
    const rows = await this.db.withTenant(tenantId, async (tx) => {
      const anchor = await tx.domainEvent.findUnique({ where: { id: after }, select: { createdAt: true, id: true } });
      // Unknown (or another tenant's, invisible under RLS) id: nothing to replay; live from now.
      if (anchor === null) return [];
      const exact = types.filter((t) => !t.endsWith('.*') && t !== '*');
      const families = types.filter((t) => t.endsWith('.*')).map((t) => t.slice(0, -1));
      const typeFilter =
        types.length === 0 || types.includes('*') ? {} : { OR: [...(exact.length ? [{ type: { in: exact } }] : []), ...families.map((f) => ({ type: { startsWith: f } }))] };
      return tx.domainEvent.findMany({
        where: {
          AND: [{ OR: [{ createdAt: { gt: anchor.createdAt } }, { createdAt: anchor.createdAt, id: { gt: anchor.id } }] }, typeFilter],
        },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit + 1,
      });
    });
    const truncated = rows.length > limit;
    return {
      truncated,
      rows: rows.slice(0, limit).map((r) => ({
        id: r.id,
        tenantId: r.tenantId,
        type: r.type as PublishedEvent['type'],
        subjectType: r.subjectType as PublishedEvent['subjectType'],
        subjectId: r.subjectId,
        data: r.data as Record<string, unknown>,
        createdAt: r.createdAt.toISOString(),
      })),
    };
  }
}

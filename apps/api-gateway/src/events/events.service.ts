import { Inject, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';

import type { GatewayConfig } from '@payorch/config';
import type { Database, PublishedEvent, TransactionClient } from '@payorch/db';
import { ApiError, isUuid, type TenantContext } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { DATABASE, GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import type { StreamQuery } from './dto/events.dto';
import { EventHub } from './event-hub';

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
 * A tenant's live event stream, read from the DomainEvent table in `seq` order: `seq` is assigned after
 * commit, in commit order (payorch_sequence_events), so "the events after X" never changes behind a
 * reader, whatever the length of the producers' transactions. The stream keeps a cursor (the last seq it
 * sent or scanned past): first the events after `after` (Last-Event-ID; or from now on without one), then
 * one more read each time Redis pub/sub announces an event of the tenant, and every EVENTS_HEARTBEAT_MS
 * in case a message was lost. Pub/sub is only the doorbell: every event is sent from a read after the
 * cursor, one read at a time, so nothing is sent twice or skipped. The first read is capped at
 * EVENTS_CATCHUP_LIMIT: past it the stream ends and the client reconnects with the last id it got
 * (EventSource does so by itself), which pages through a long gap.
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
    const types = options.types ?? [];
    const limit = this.config.EVENTS_CATCHUP_LIMIT;
    let cursor = 0n;
    let closed = false;
    /** A read is running (or the first one has not finished): a ring only asks for one more. */
    let reading: Promise<void> | undefined = Promise.resolve();
    let again = false;
    const subscription: { remove?: () => void } = {};
    const stop = () => {
      if (closed) return;
      closed = true;
      subscription.remove?.();
    };
    /** Sends everything after the cursor; on the first read, more than `limit` ends the stream. */
    const drain = async (first: boolean): Promise<void> => {
      do {
        again = false;
        for (;;) {
          const page = await this.read(tenantId, cursor, types, limit);
          for (const event of page.events) {
            if (closed) return;
            if (!sink.send(event)) return stop();
          }
          cursor = page.next;
          if (!page.truncated || closed) break;
          if (first) {
            stop();
            return sink.end('catch-up limit reached; reconnect with the last event id to continue');
          }
        }
        first = false;
      } while (again && !closed);
    };
    const ring = () => {
      if (closed) return;
      if (reading) {
        again = true;
        return;
      }
      reading = drain(false)
        .catch((error: unknown) => {
          this.logger.error({ err: error, tenantId }, 'event stream read failed');
          stop();
          sink.end('internal error; reconnect');
        })
        .finally(() => (reading = undefined));
    };
    // Subscribed BEFORE the first read: an event committed after that read rings the bell (and the hub rings every EVENTS_HEARTBEAT_MS).
    const remove = await this.hub.add(tenantId, { deliver: ring });
    subscription.remove = remove;
    if (closed) remove();
    try {
      cursor = await this.position(tenantId, options.after);
      await drain(true);
    } catch (error) {
      stop();
      throw error;
    }
    reading = undefined;
    if (again) ring();
    return { close: stop };
  }

  /** `GET /v1/events/stream` as Server-Sent Events on the raw Express response. */
  async sse(ctx: TenantContext, query: StreamQuery, lastEventId: string | undefined, req: Request, res: Response): Promise<void> {
    const after = lastEventId?.trim() || query.after;
    if (after !== undefined && !isUuid(after)) {
      throw new ApiError('VALIDATION_FAILED', 'Last-Event-ID: must be an event id (UUID)', {
        issues: [{ field: 'Last-Event-ID', message: 'must be an event id (UUID)' }],
      });
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
      // Catch-up replayed and the tenant's channel subscribed: every event committed from now on is sent.
      else res.write(`: live\n\n`);
    } catch (error) {
      this.logger.error({ err: error, tenantId: ctx.tenantId }, 'event stream failed to open');
      sink.end('internal error; reconnect');
    }
  }

  /**
   * The seq to stream after: the anchor event's (Last-Event-ID), or the tenant's latest for "from now on"
   * and for an unknown id (another tenant's is invisible under RLS). An anchor that is committed but not
   * numbered yet (its producer's sequencing failed) is numbered here first.
   */
  private async position(tenantId: string, after: string | undefined): Promise<bigint> {
    const find = () =>
      this.db.withTenant(tenantId, async (tx) => {
        const anchor = after === undefined ? null : await tx.domainEvent.findUnique({ where: { id: after }, select: { seq: true } });
        if (anchor?.seq != null) return { seq: anchor.seq, unnumbered: false };
        return { seq: await latestSeq(tx, tenantId), unnumbered: anchor !== null };
      });
    const found = await find();
    if (!found.unnumbered) return found.seq;
    await this.db.sequenceEvents();
    return (await find()).seq;
  }

  /**
   * One page of the tenant's events after `after` in seq order (RLS-scoped; index DomainEvent(tenantId, seq)).
   * `next` is where the following read starts: the last row, or, when the page is complete, the tenant's
   * latest seq read just BEFORE the page (seqs become visible in order, so the page saw everything up to
   * it), which moves the cursor past events the type filter left out.
   */
  private async read(
    tenantId: string,
    after: bigint,
    types: readonly string[],
    limit: number,
  ): Promise<{ events: PublishedEvent[]; next: bigint; truncated: boolean }> {
    const exact = types.filter((t) => !t.endsWith('.*') && t !== '*');
    const families = types.filter((t) => t.endsWith('.*')).map((t) => t.slice(0, -1));
    const typeFilter =
      types.length === 0 || types.includes('*')
        ? {}
        : { OR: [...(exact.length ? [{ type: { in: exact } }] : []), ...families.map((f) => ({ type: { startsWith: f } }))] };
    const { high, rows } = await this.db.withTenant(tenantId, async (tx) => {
      const latest = await latestSeq(tx, tenantId);
      const page = await tx.domainEvent.findMany({ where: { AND: [{ tenantId, seq: { gt: after } }, typeFilter] }, orderBy: { seq: 'asc' }, take: limit + 1 });
      return { high: latest, rows: page };
    });
    const truncated = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page.at(-1)?.seq ?? after;
    return {
      truncated,
      next: truncated || last > high ? last : high,
      events: page.map((r) => ({
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

/** The tenant's highest event seq (0 if none). */
async function latestSeq(tx: TransactionClient, tenantId: string): Promise<bigint> {
  const { _max } = await tx.domainEvent.aggregate({ where: { tenantId }, _max: { seq: true } });
  return _max.seq ?? 0n;
}

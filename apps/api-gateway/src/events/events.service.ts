import { type BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';

import type { GatewayConfig } from '@payorch/config';
import { type Database, Prisma, type PublishedEvent, type TransactionClient } from '@payorch/db';
import { ApiError, isUuid, type TenantContext } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { DATABASE, GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import type { StreamQuery } from './dto/events.dto';
import { EventHub } from './event-hub';
import { DOMAIN_EVENT_TYPES } from './event-types';

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
export class EventsService implements BeforeApplicationShutdown {
  /** Open Server-Sent Event streams, ended at shutdown (an open stream would hold the HTTP server open). */
  private readonly sseStreams = new Set<StreamSink>();

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
      this.sseStreams.delete(sink);
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
          this.sseStreams.delete(sink);
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
    this.sseStreams.add(sink);
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

  /** Graceful shutdown, before Nest closes the HTTP server: every SSE client is told to reconnect (to another gateway). */
  beforeApplicationShutdown(): void {
    for (const sink of [...this.sseStreams]) sink.end('server shutting down; reconnect');
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
   * One page of the tenant's events after `after` in seq order (RLS-scoped; index DomainEvent(tenantId, seq), or with a
   * type filter (tenantId, type, seq): `typedPage`).
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
    const wanted = types.length === 0 || types.includes('*') ? undefined : expandTypes(types);
    const { high, rows } = await this.db.withTenant(tenantId, async (tx) => {
      const latest = await latestSeq(tx, tenantId);
      const page =
        wanted === undefined
          ? await tx.domainEvent.findMany({ where: { tenantId, seq: { gt: after } }, orderBy: { seq: 'asc' }, take: limit + 1 })
          : await typedPage(tx, tenantId, after, wanted, limit + 1);
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

/**
 * The tenant's highest event seq (0 if none): the last entry of the (tenantId, seq) index. Not
 * `aggregate({ _max })`: Prisma wraps it in a sub-select with OFFSET, which PostgreSQL cannot answer from
 * the index, so every read scanned all the tenant's events (bench/scale, issue 19).
 */
async function latestSeq(tx: TransactionClient, tenantId: string): Promise<bigint> {
  const last = await tx.domainEvent.findFirst({ where: { tenantId, seq: { not: null } }, orderBy: { seq: 'desc' }, select: { seq: true } });
  return last?.seq ?? 0n;
}

interface EventRow {
  id: string;
  tenantId: string;
  type: string;
  subjectType: string;
  subjectId: string | null;
  data: unknown;
  createdAt: Date;
  seq: bigint | null;
}

/**
 * The first `take` events after `after` of the given types, in seq order: one `type = <constant>` branch
 * per type (each an index range of (tenantId, type, seq) that stops after `take` rows), merged by seq.
 * Bounded whatever the table size and however rare the types. Prisma's `type IN (…)` let the planner scan
 * (tenantId, seq) past every event when the types are rare, and a join over the types hides their
 * selectivity from it (both 20–270 ms at 1M events in bench/scale).
 */
function typedPage(tx: TransactionClient, tenantId: string, after: bigint, types: string[], take: number): Promise<EventRow[]> {
  if (types.length === 0) return Promise.resolve([]);
  const branches = types.map(
    (type) => Prisma.sql`(SELECT "id", "tenantId", "type", "subjectType", "subjectId", "data", "createdAt", "seq" FROM "DomainEvent"
      WHERE "tenantId" = ${tenantId}::uuid AND "type" = ${type} AND "seq" > ${after} ORDER BY "seq" LIMIT ${take})`,
  );
  return tx.$queryRaw<EventRow[]>`SELECT * FROM (${Prisma.join(branches, ' UNION ALL ')}) e ORDER BY e."seq" LIMIT ${take}`;
}

/**
 * Exact types and `family.*` filters as the list of event types they select. Families expand over
 * DOMAIN_EVENT_TYPES (exhaustive over the DomainEventType union every producer writes), so the read is
 * `type IN (…)`, which the (tenantId, type, seq) index answers; `type LIKE 'family.%'` could not be.
 */
export function expandTypes(types: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of types) {
    if (!t.endsWith('.*')) out.add(t);
    else for (const known of DOMAIN_EVENT_TYPES) if (known.startsWith(t.slice(0, -1))) out.add(known);
  }
  return [...out];
}

import { type BeforeApplicationShutdown, Inject, Injectable, Optional } from '@nestjs/common';
import type { Request, Response } from 'express';

import { Counter, Gauge, Registry as PromRegistry } from 'prom-client';

import type { GatewayConfig } from '@payorch/config';
import { type Database, Prisma, type PublishedEvent, type TransactionClient } from '@payorch/db';
import { ApiError, isUuid, KeyedSlots, type TenantContext } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';

import { DATABASE, GATEWAY_CONFIG, LOGGER, METRICS_REGISTRY } from '../common/tokens';
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

/** How a stream reaches its client (the label of the stream metrics). */
export type StreamTransport = 'sse' | 'websocket';

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
 * in case a message was lost — one read for all the tenant's live streams on this gateway (TenantStreams).
 * Pub/sub is only the doorbell: every event is sent from a read after the cursor, one read at a time, so
 * nothing is sent twice or skipped. The first read is capped at
 * EVENTS_CATCHUP_LIMIT: past it the stream ends and the client reconnects with the last id it got
 * (EventSource does so by itself), which pages through a long gap.
 *
 * Each tenant holds at most EVENTS_MAX_STREAMS_PER_TENANT streams on this gateway, SSE and WebSocket together
 * (`admit`): every stream costs a connection, a heartbeat timer, a catch-up read and up to EVENTS_CLIENT_BUFFER_BYTES of
 * send buffer, and one tenant must not hold them without bound (docs/security.md, "Per-tenant limits").
 */
@Injectable()
export class EventsService implements BeforeApplicationShutdown {
  /** Open Server-Sent Event streams, ended at shutdown (an open stream would hold the HTTP server open). */
  private readonly sseStreams = new Set<StreamSink>();
  /** Per tenant: its streams on this gateway and their shared reads. */
  private readonly tenants = new Map<string, TenantStreams>();
  /** Per tenant: the stream slots it holds on this gateway (admitted, not yet closed). */
  private readonly slots: KeyedSlots;
  private readonly metrics: { open: Gauge<'transport'>; refused: Counter<'transport'> };

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly hub: EventHub,
    // Always provided by the app; a bench that builds the service alone gets a registry of its own.
    @Optional() @Inject(METRICS_REGISTRY) registry: Registry = new PromRegistry(),
  ) {
    this.slots = new KeyedSlots(config.EVENTS_MAX_STREAMS_PER_TENANT);
    this.metrics = {
      open: new Gauge({
        name: 'payorch_event_streams_open',
        help: 'Live event streams open on this gateway, by transport (sse, websocket).',
        labelNames: ['transport'] as const,
        registers: [registry],
      }),
      refused: new Counter({
        name: 'payorch_event_streams_refused_total',
        help: 'Live event streams refused 429 TOO_MANY_STREAMS because their tenant held EVENTS_MAX_STREAMS_PER_TENANT on this gateway, by transport.',
        labelNames: ['transport'] as const,
        registers: [registry],
      }),
    };
    this.metrics.open.inc({ transport: 'sse' }, 0);
    this.metrics.open.inc({ transport: 'websocket' }, 0);
    this.metrics.refused.inc({ transport: 'sse' }, 0);
    this.metrics.refused.inc({ transport: 'websocket' }, 0);
  }

  /**
   * Takes one of the tenant's EVENTS_MAX_STREAMS_PER_TENANT stream slots on this gateway, before anything of the stream
   * is made: the returned function gives it back (call it once the stream's connection is closed, whatever closed it;
   * later calls do nothing). A tenant that holds them all is refused with 429 TOO_MANY_STREAMS.
   */
  admit(ctx: Pick<TenantContext, 'tenantId' | 'requestId'>, transport: StreamTransport): () => void {
    const { tenantId } = ctx;
    const release = this.slots.take(tenantId);
    const limit = this.config.EVENTS_MAX_STREAMS_PER_TENANT;
    if (release === null) {
      this.metrics.refused.inc({ transport });
      this.logger.warn({ tenantId, requestId: ctx.requestId, transport, limit }, 'event stream refused: the tenant holds its most streams');
      // A hint only: a slot frees when one of the tenant's streams closes, and a gone client's is found by the heartbeat.
      const retryAfterSeconds = Math.ceil(this.config.EVENTS_HEARTBEAT_MS / 1000);
      throw new ApiError('TOO_MANY_STREAMS', `this tenant already holds ${limit} live event streams on this gateway (the most it may); close one first`, {
        limit,
        retryAfterSeconds,
      });
    }
    this.metrics.open.inc({ transport });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      this.metrics.open.dec({ transport });
    };
  }

  /** The stream slots the tenant holds on this gateway now. */
  openStreams(tenantId: string): number {
    return this.slots.of(tenantId);
  }

  async open(tenantId: string, options: { after?: string; types?: readonly string[] }, sink: StreamSink): Promise<OpenStream> {
    const types = options.types ?? [];
    const wanted = types.length === 0 || types.includes('*') ? undefined : new Set(expandTypes(types));
    const tenant = this.tenantStreams(tenantId);
    const stream: LiveStream = {
      cursor: 0n,
      wanted,
      sink,
      closed: false,
      stop: () => {
        if (stream.closed) return;
        stream.closed = true;
        tenant.leave(stream);
      },
    };
    tenant.members.add(stream);
    try {
      // Subscribed BEFORE the first read: an event committed after that read rings the bell (and the hub rings every EVENTS_HEARTBEAT_MS).
      await tenant.subscribed;
      stream.cursor = await this.position(tenantId, options.after);
      // The catch-up is the stream's own read (its types, from its cursor); more than EVENTS_CATCHUP_LIMIT ends the stream.
      const page = await this.read(tenantId, stream.cursor, types, this.config.EVENTS_CATCHUP_LIMIT);
      for (const { event } of page.rows) {
        if (stream.closed) return { close: stream.stop };
        if (!sink.send(event)) {
          stream.stop();
          return { close: stream.stop };
        }
      }
      if (page.truncated) {
        stream.stop();
        sink.end('catch-up limit reached; reconnect with the last event id to continue');
        return { close: stream.stop };
      }
      stream.cursor = page.next;
    } catch (error) {
      stream.stop();
      throw error;
    }
    // Live from here: the tenant's shared reads (rung once now for whatever committed during the catch-up).
    if (!stream.closed) tenant.join(stream);
    return { close: stream.stop };
  }

  /**
   * The tenant's live streams on this gateway, made on the first stream's open: one hub listener, and one read per ring
   * for all of them (issue 19: each stream read the table on every event of its tenant, so a console of N viewers cost N
   * transactions per event).
   */
  private tenantStreams(tenantId: string): TenantStreams {
    const existing = this.tenants.get(tenantId);
    if (existing && !existing.disposed) return existing;
    const tenant = new TenantStreams(
      tenantId,
      (after) => this.read(tenantId, after, [], this.config.EVENTS_CATCHUP_LIMIT),
      (error) => this.logger.error({ err: error, tenantId }, 'event stream read failed'),
      () => {
        if (this.tenants.get(tenantId) === tenant) this.tenants.delete(tenantId);
      },
    );
    this.tenants.set(tenantId, tenant);
    tenant.subscribe(this.hub);
    return tenant;
  }

  /** `GET /v1/events/stream` as Server-Sent Events on the raw Express response. */
  async sse(
    ctx: TenantContext,
    query: StreamQuery,
    lastEventId: string | undefined,
    req: Request,
    res: Response,
    /** Ends the stream (`end`) once its key no longer authenticates (KeyWatch); returns what stops watching. */
    watchKey: (end: (reason: string) => void) => () => void = () => () => undefined,
  ): Promise<void> {
    // Canonical, as every UUID of a request (common/zod canonicalUuid): the header is read here, not by a schema.
    const after = (lastEventId?.trim() || query.after)?.toLowerCase();
    if (after !== undefined && !isUuid(after)) {
      throw new ApiError('VALIDATION_FAILED', 'Last-Event-ID: must be an event id (UUID)', {
        issues: [{ field: 'Last-Event-ID', message: 'must be an event id (UUID)' }],
      });
    }
    // Refused (429, through the filter) before a byte of the stream is written.
    const release = this.admit(ctx, 'sse');
    const limit = this.config.EVENTS_CLIENT_BUFFER_BYTES;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.sseStreams.delete(sink);
      clearInterval(heartbeat);
      unwatch?.();
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
          unwatch?.();
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
    let unwatch: (() => void) | undefined = undefined; // set once the stream is watched (below)
    // However the response ends (the client went away, `end`, a slow client destroyed), its slot is given back.
    res.once('close', () => {
      release();
      end();
    });
    // The client may have gone while the request was authenticated: its 'close' was before the listeners above, and
    // nothing would end a stream opened now (a timer and a tenant listener kept for ever).
    if (res.destroyed || req.destroyed) {
      release();
      ended = true;
      return;
    }
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
    this.sseStreams.add(sink);
    unwatch = watchKey((reason) => sink.end(reason));
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
  private async read(tenantId: string, after: bigint, types: readonly string[], limit: number): Promise<EventPage> {
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
      rows: page.map((r) => ({
        seq: r.seq!,
        event: {
          id: r.id,
          tenantId: r.tenantId,
          type: r.type as PublishedEvent['type'],
          subjectType: r.subjectType as PublishedEvent['subjectType'],
          subjectId: r.subjectId,
          data: r.data as Record<string, unknown>,
          createdAt: r.createdAt.toISOString(),
        },
      })),
    };
  }
}

/** One page of a tenant's events in seq order, and where the next read starts (EventsService.read). */
interface EventPage {
  rows: Array<{ seq: bigint; event: PublishedEvent }>;
  next: bigint;
  truncated: boolean;
}

/** One open stream: the last seq it sent or scanned past, its types (undefined: all), its transport. */
interface LiveStream {
  cursor: bigint;
  wanted: ReadonlySet<string> | undefined;
  sink: StreamSink;
  closed: boolean;
  stop(): void;
}

/**
 * A tenant's streams on this gateway. Each stream catches up with its own read, then joins `live`; from then on every
 * ring (a pub/sub message of the tenant, the hub's heartbeat) makes one read of all the tenant's events after the lowest
 * cursor of the live streams, and each stream gets the ones past its own cursor that it wants, in seq order. One read
 * at a time; rings during a read ask for one more. A failed read ends every stream it was for (their clients reconnect
 * with the last id they got), as a stream's own failed read did.
 */
class TenantStreams {
  /** Every open stream, catching up or live: the hub listener lives as long as one does. */
  readonly members = new Set<LiveStream>();
  private readonly live = new Set<LiveStream>();
  /** Resolves once the tenant's channel is subscribed; rejects (and the entry is dropped) when the SUBSCRIBE failed. */
  subscribed: Promise<void> = Promise.resolve();
  disposed = false;
  private removeListener: (() => void) | undefined;
  private reading = false;
  private again = false;

  constructor(
    private readonly tenantId: string,
    private readonly readAll: (after: bigint) => Promise<EventPage>,
    private readonly onReadError: (error: unknown) => void,
    private readonly onDisposed: () => void,
  ) {}

  subscribe(hub: EventHub): void {
    this.subscribed = hub.add(this.tenantId, { deliver: () => this.ring() }).then(
      (remove) => {
        if (this.disposed) remove();
        else this.removeListener = remove;
      },
      (error: unknown) => {
        this.dispose();
        throw error;
      },
    );
    this.subscribed.catch(() => undefined); // read by each stream's open
  }

  join(stream: LiveStream): void {
    this.live.add(stream);
    this.ring();
  }

  leave(stream: LiveStream): void {
    this.members.delete(stream);
    this.live.delete(stream);
    if (this.members.size === 0) this.dispose();
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.removeListener?.();
    this.onDisposed();
  }

  private ring(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.round();
        } while (this.again && this.live.size > 0);
      } finally {
        this.reading = false;
      }
    })();
  }

  private async round(): Promise<void> {
    const streams = [...this.live];
    if (streams.length === 0) return;
    let from = streams.reduce((low, stream) => (stream.cursor < low ? stream.cursor : low), streams[0]!.cursor);
    try {
      for (;;) {
        const page = await this.readAll(from);
        for (const stream of streams) {
          for (const { seq, event } of page.rows) {
            if (stream.closed) break;
            if (seq <= stream.cursor || (stream.wanted !== undefined && !stream.wanted.has(event.type))) continue;
            if (!stream.sink.send(event)) stream.stop();
          }
          if (page.next > stream.cursor) stream.cursor = page.next;
        }
        from = page.next;
        if (!page.truncated || streams.every((stream) => stream.closed)) return;
      }
    } catch (error) {
      this.onReadError(error);
      for (const stream of streams) {
        if (stream.closed) continue;
        stream.stop();
        stream.sink.end('internal error; reconnect');
      }
    }
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

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WebSocket, WebSocketServer } from 'ws';

import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { tokenPrefix, verifyToken } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { DATABASE, GATEWAY_CONFIG, LOGGER } from '../common/tokens';
import { streamQuery } from './dto/events.dto';
import { EventsService, wireEvent } from './events.service';

export const EVENTS_WS_PATH = '/v1/events/ws';

/**
 * `GET /v1/events/ws` (WebSocket upgrade): the same stream as SSE, one JSON event per text message.
 * Authenticated at the upgrade with `Authorization: Bearer <API key>` holding `events:read`, before
 * `handleUpgrade` (a failure answers 401/403 and destroys the socket). Query: `types`, `after`.
 * Liveness: a ping every EVENTS_HEARTBEAT_MS; a client that did not answer the previous one is
 * terminated. A client whose send buffer exceeds EVENTS_CLIENT_BUFFER_BYTES is terminated (1013).
 */
@Injectable()
export class EventsWsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private server: Server | undefined;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== EVENTS_WS_PATH) return;
    void this.upgrade(req, socket, head, url);
  };

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly events: EventsService,
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    this.server?.on('upgrade', this.onUpgrade);
  }

  async onApplicationShutdown(): Promise<void> {
    this.server?.off('upgrade', this.onUpgrade);
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    try {
      const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const token = match?.[1];
      const prefix = token ? tokenPrefix(token, 'pok') : null;
      const key = prefix ? await this.db.findApiKeyByPrefix(prefix) : null;
      if (!token || !key || !verifyToken(token, key.hash) || key.revokedAt || (key.expiresAt && key.expiresAt <= new Date())) return refuse(401, 'Unauthorized');
      if (!key.scopes.includes('events:read')) return refuse(403, 'Forbidden');
      const query = streamQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!query.success) return refuse(400, 'Bad Request');
      this.wss.handleUpgrade(req, socket, head, (ws) => void this.serve(ws, key.tenantId, query.data.after, query.data.types));
    } catch (error) {
      this.logger.error({ err: error }, 'event websocket upgrade failed');
      refuse(500, 'Internal Server Error');
    }
  }

  private async serve(ws: WebSocket, tenantId: string, after: string | undefined, types: string[] | undefined): Promise<void> {
    let alive = true;
    let stream: { close(): void } | undefined;
    const heartbeat = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, this.config.EVENTS_HEARTBEAT_MS);
    ws.on('pong', () => (alive = true));
    ws.on('close', () => {
      clearInterval(heartbeat);
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

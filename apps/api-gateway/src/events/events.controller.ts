import { Controller, Get, Headers, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';

import type { TenantContext } from '@payorch/domain';

import { bearerToken, RequireScopes } from '../common/auth.guard';
import { ApiErrors, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi } from '../common/zod';
import { streamEventSchema, streamQuery, type StreamQuery } from './dto/events.dto';
import { EventsService } from './events.service';
import { KeyWatch } from './key-watch';

@ApiTags('events')
@ApiBearerAuth()
@Controller('v1/events')
export class EventsController {
  constructor(
    private readonly service: EventsService,
    private readonly keyWatch: KeyWatch,
  ) {}

  @Get('stream')
  @RequireScopes('events:read')
  @ApiOperation({
    summary: 'Live events of the tenant (Server-Sent Events)',
    description:
      'Each event is `id: <event id>`, `event: <type>`, `data: <JSON>`; a `: live` comment once the catch-up is sent and the stream is live; a `: heartbeat` comment every 15 s. Reconnect with `Last-Event-ID` (or `?after=`) to replay what you missed from the database first, in order. A client that reads too slowly is disconnected (reconnect with Last-Event-ID). A tenant holds at most `EVENTS_MAX_STREAMS_PER_TENANT` streams (default 50, SSE and WebSocket together) on one gateway: one more is 429 `TOO_MANY_STREAMS` (`details.limit`) until one of them closes. WebSocket variant: `GET /v1/events/ws` (upgrade, same query, `Authorization` header), one JSON event per message; its upgrade spends the request budget like any request and answers the same 429s.',
  })
  @ApiErrors('TOO_MANY_STREAMS')
  @ApiProduces('text/event-stream')
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Replay events after this event id, then go live.' })
  @ApiResponse({ status: 200, description: 'text/event-stream; each `data:` line is one event', schema: openApi(streamEventSchema) })
  stream(
    @Tenant() ctx: TenantContext,
    @ValidQuery(streamQuery) query: StreamQuery,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    // The guard authenticated the key of this header: the stream is kept to it (revoked, it ends).
    const token = bearerToken(req.header('authorization'))!;
    return this.service.sse(ctx, query, lastEventId, req, res, (end) => this.keyWatch.watch(ctx.tenantId, token, 'events:read', end));
  }
}

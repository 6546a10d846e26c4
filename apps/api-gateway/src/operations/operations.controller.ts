import { Body, Controller, Get, Headers, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';

import type { KeyScope, TenantContext } from '@payorch/domain';

import { bearerToken, RequireScopes } from '../common/auth.guard';
import { IdempotencyKeptByResource } from '../common/idempotency-kept-by-resource';
import { ApiErrors, IDEMPOTENCY_HEADER, pageSchema, ValidQuery } from '../common/openapi';
import { Tenant } from '../common/tenant.decorator';
import { openApi, uuidParam, ZodPipe } from '../common/zod';
import { KeyWatch } from '../events/key-watch';
import {
  type CreateOperationDto,
  createOperationSchema,
  createQuery,
  type CreateQuery,
  listOperationsQuery,
  type ListOperationsQuery,
  operationResponseSchema,
  receiptResponseSchema,
  type ResolveOperationDto,
  resolveOperationSchema,
} from './dto/operation.dto';
import { OperationsService } from './operations.service';

/** What starting an operation needs; a `?wait=` holds its key to it for as long as it waits. */
const CREATE_SCOPE: KeyScope = 'operations:write';

@ApiTags('operations')
@ApiBearerAuth()
@Controller('v1')
export class OperationsController {
  constructor(
    private readonly service: OperationsService,
    private readonly keyWatch: KeyWatch,
  ) {}

  @Post('terminals/:id/operations')
  @RequireScopes(CREATE_SCOPE)
  @IdempotencyKeptByResource()
  @ApiOperation({
    summary: 'Start an operation on a terminal',
    description:
      "Creates the operation (state `pending`) and sends it to the terminal once. Same Idempotency-Key + same body → the same operation; a different body → 409. A type the terminal's protocol lacks → 422 naming the protocol. A reversal (refund, void, partial void, SBP refund, capture) for more than is left of its original — the original's amount less its reversals approved, in flight or unknown — → 422 AMOUNT_EXCEEDS_ORIGINAL (details: originalAmount, reversedAmount, remainingAmount); concurrent reversals of one original are checked one at a time. A DISABLED terminal → 409 TERMINAL_DISABLED; a terminal bridged by a REVOKED agent → 409 AGENT_REVOKED (nothing is written or sent). Follow it with GET /v1/operations/{id}, the event stream or webhooks; `?wait=<ms>` waits for the outcome. A key that stops authenticating during the wait (revoked, expired, its tenant disabled) ends it at once with 401 `UNAUTHENTICATED`: the operation was created and goes on; follow it with a valid key (the same request and Idempotency-Key answer it).",
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(createOperationSchema) })
  @ApiResponse({ status: 201, schema: openApi(operationResponseSchema) })
  @ApiResponse({
    status: 409,
    description:
      '`TERMINAL_DISABLED` (terminal status DISABLED), `AGENT_REVOKED` (its agent is revoked; details.agentId), `TERMINAL_RECOVERING` (an operation of the terminal is still unknown; `Retry-After`, details.operationId), `ORIGINAL_ALREADY_CLOSED` (a capture or cancel of the preauthorisation is already approved, in flight or unknown; details.by), or `IDEMPOTENCY_KEY_REUSED`.',
  })
  @ApiErrors('TERMINAL_DISABLED', 'AGENT_REVOKED', 'TERMINAL_RECOVERING', 'UNPROCESSABLE', 'AMOUNT_EXCEEDS_ORIGINAL', 'ORIGINAL_ALREADY_CLOSED')
  create(
    @Tenant() ctx: TenantContext,
    @Param('id', new ZodPipe(uuidParam)) terminalId: string,
    @Body(new ZodPipe(createOperationSchema)) dto: CreateOperationDto,
    @ValidQuery(createQuery) query: CreateQuery,
    @Headers('idempotency-key') idempotencyKey: string,
    @Req() req: Request,
  ) {
    // The guard authenticated the key of this header: a wait is kept to it (revoked, the request answers 401).
    const token = bearerToken(req.header('authorization'))!;
    return this.service.create(ctx, terminalId, dto, idempotencyKey, query.wait, (end) => this.keyWatch.watch(ctx.tenantId, token, CREATE_SCOPE, end));
  }

  @Get('operations')
  @RequireScopes('operations:read')
  @ApiOperation({ summary: 'List operations (newest first, cursor pagination; filter by terminal, store, type, state, time range)' })
  @ApiResponse({ status: 200, schema: pageSchema(operationResponseSchema) })
  list(@Tenant() ctx: TenantContext, @ValidQuery(listOperationsQuery) query: ListOperationsQuery) {
    return this.service.list(ctx, query);
  }

  @Get('operations/:id')
  @RequireScopes('operations:read')
  @ApiResponse({ status: 200, schema: openApi(operationResponseSchema) })
  @ApiOperation({ summary: 'Get an operation' })
  get(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.get(ctx, id);
  }

  @Post('operations/:id/cancel')
  @HttpCode(202)
  @RequireScopes('operations:write')
  @ApiOperation({ summary: 'Cancel an operation (409 when the terminal can no longer interrupt it)' })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiResponse({ status: 202, schema: openApi(operationResponseSchema) })
  @ApiErrors('CONFLICT')
  cancel(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.cancel(ctx, id);
  }

  @Post('operations/:id/resolve')
  @HttpCode(200)
  @RequireScopes('operations:write')
  @ApiOperation({
    summary: 'Mark an UNKNOWN operation as approved / declined / failed (human resolution)',
    description:
      'Only from `unknown` (409 otherwise), e.g. after automatic recovery gave up. Records the RRN and authorisation code found in the terminal journal or at the bank (`rrn`, `approvalCode`) and the note (`stateReason`). Audited with all three; publishes `operation.recovered` with `resolvedBy: "human"`, `note`, `rrn`, `approvalCode`.',
  })
  @ApiHeader(IDEMPOTENCY_HEADER)
  @ApiBody({ schema: openApi(resolveOperationSchema) })
  @ApiResponse({ status: 200, schema: openApi(operationResponseSchema) })
  @ApiErrors('CONFLICT')
  resolve(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string, @Body(new ZodPipe(resolveOperationSchema)) dto: ResolveOperationDto) {
    return this.service.resolve(ctx, id, dto);
  }

  @Get('operations/:id/receipt')
  @RequireScopes('operations:read')
  @ApiResponse({ status: 200, schema: openApi(receiptResponseSchema) })
  @ApiOperation({ summary: 'Get the receipt of an approved operation' })
  receipt(@Tenant() ctx: TenantContext, @Param('id', new ZodPipe(uuidParam)) id: string) {
    return this.service.receipt(ctx, id);
  }
}

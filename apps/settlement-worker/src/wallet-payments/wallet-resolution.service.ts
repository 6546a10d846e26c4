import { Inject, Injectable } from '@nestjs/common';

import { toOrderAmount } from '@payorch/assist-tokenpay';
import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { JobData, SecretBox } from '@payorch/domain';
import { EgressPolicy, guardedFetch } from '@payorch/egress-guard';
import type { Logger } from '@payorch/logging';
import {
  type AssistOrderSummary,
  changeOfFoundOrder,
  claimsOnOrder,
  createAssistClient,
  ensureResolveJob,
  type ClaimingOperation,
  errorBody,
  isFinalState,
  openMerchantSecrets,
  operationClaims,
  type OperationOutcomeColumns,
  operationNotFoundError,
  orderNotFoundError,
  type PaymentChange,
  type ResolveQueue,
  settlementOfOperation,
  settleWalletOperation,
  transitionWalletPayment,
} from '@payorch/wallet-payments';

import { DATABASE, LOGGER, SECRET_BOX, WORKER_CONFIG } from '../tokens';
import { WALLET_METRICS, type WalletMetrics } from './wallet-payments.tokens';

/** Thrown while the payment's outcome is still open: BullMQ retries the job with exponential backoff. */
export class StillPendingError extends Error {
  override readonly name = 'StillPendingError';
}

export interface ResolveResult {
  readonly paymentId: string;
  readonly state: string;
  /** `already_final`: nothing to do (job ran twice, or the gateway stored the outcome first). */
  readonly outcome: 'resolved' | 'already_final';
}

/**
 * Resolves wallet payments whose outcome is open (UNKNOWN, PROCESSING, REQUIRES_ACTION) by reading
 * Assist's order state (`resolveOrder`): read-only, so a resolution never charges twice. Answers that
 * fail checkvalue are never trusted: the payment stays as it is and the job retries. An order is taken as the
 * payment's outcome only when provably its own (libs/wallet-payments ownership.ts), never by its number alone.
 */
@Injectable()
export class WalletResolutionService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    @Inject(WALLET_METRICS) private readonly metrics: WalletMetrics,
  ) {
    this.policy = EgressPolicy.fromList(config.EGRESS_ALLOW_CIDRS);
  }

  /**
   * The operator's egress policy (EGRESS_ALLOW_CIDRS, open to every tenant): the merchant's server URL is tenant data.
   * Each request adds the ranges the operator granted the payment's tenant for Assist (EgressGrant).
   */
  private readonly policy: EgressPolicy;

  async resolve(data: JobData['wallet_payment.resolve']): Promise<ResolveResult> {
    const { paymentId, tenantId } = data;
    const payment = await this.db.withTenant(tenantId, (tx) =>
      tx.walletPayment.findUnique({ where: { id: paymentId }, include: { merchant: true, operations: true } }),
    );
    if (!payment) throw new PermanentResolveError(`wallet payment ${paymentId} does not exist for tenant ${tenantId}`);
    const openOperations = payment.operations.filter((op) => op.state === 'UNKNOWN' || op.state === 'PENDING');
    if (isFinalState(payment.state) && openOperations.length === 0) return { paymentId, state: payment.state, outcome: 'already_final' };

    const client = this.client(payment.merchant, tenantId, paymentId);
    if (openOperations.length > 0) return this.resolveOperations(client, payment, openOperations);
    const resolution = await client.resolveOrder(payment.orderNumber, {
      orderAmount: toOrderAmount(payment.amount, payment.currency),
      orderCurrency: payment.currency,
    });

    let change: PaymentChange | null = null;
    let error: PaymentChange['error'] | undefined;
    switch (resolution.status) {
      case 'not_found': {
        // Right after a lost request Assist may not show the order yet: only a long silence proves it never existed.
        // PENDING too: its gateway may merely be slow and about to send. It never sends once this write wins (its
        // compare-and-set to PROCESSING fails), but rejecting at once would refuse a payment that was going through.
        const silentFor = Date.now() - payment.createdAt.getTime();
        // An order Assist named (its billnumber on the row: "In Process", requires_action) exists, however long
        // orderstate denies it — as an operation Assist named is never concluded not found (resolveOperations).
        const named = billNumberOnRow(payment.assistOrder);
        if (named !== undefined) {
          this.logger.warn(
            { paymentId, tenantId, state: payment.state, billNumber: named },
            'Assist answers "no such order" for a wallet payment whose order it named: not concluded never paid',
          );
        } else if (silentFor > this.config.WALLET_NOT_FOUND_GRACE_MS) {
          change = {
            state: 'REJECTED',
            completedAt: new Date(),
            error: orderNotFoundError(this.config.WALLET_NOT_FOUND_GRACE_MS),
          };
        }
        break;
      }
      case 'unknown':
        // Keep the state; record why this attempt could not tell (e.g. CHECKVALUE_MISMATCH, TIMEOUT).
        if (payment.state === 'UNKNOWN') error = errorBody(resolution.error);
        break;
      default: {
        // The order Assist holds under the number is this payment's outcome only when provably its own (ownership.ts):
        // another settings row or tenant of the same Assist account, or anyone else, may have used the number.
        const claims = await this.db.withTenant(tenantId, (tx) => claimsOnOrder(tx, payment, payment.merchant.merchantId, resolution.order.billNumber));
        const found = changeOfFoundOrder(resolution, payment, claims);
        change = found.change;
        if (!found.verdict.ours) {
          this.logger[change.state === 'REJECTED' ? 'warn' : 'error'](
            { alert: 'assist_order_not_ours', paymentId, tenantId, from: payment.state, state: change.state, reason: found.verdict.reason },
            "the order Assist holds under the wallet payment's number is not provably its own: not taken as its outcome",
          );
        }
        // The payer has not finished 3-D Secure / CVC yet: still waiting on them, not on Assist.
        if (change.state === 'PROCESSING' && payment.state === 'REQUIRES_ACTION') change = { ...change, state: 'REQUIRES_ACTION' };
      }
    }

    const row = await this.db.withTenant(tenantId, async (tx) => {
      const written = await transitionWalletPayment(tx, {
        paymentId,
        from: [payment.state],
        change,
        ...(error ? { error } : {}),
        countResolutionAttempt: true,
      });
      return written?.row ?? null;
    });
    if (!row) throw new StillPendingError(`wallet payment ${paymentId} changed while it was being resolved; re-reading`);
    this.logger.info(
      { paymentId, tenantId, from: payment.state, state: row.state, resolution: resolution.status, attempts: row.resolutionAttempts },
      'wallet payment resolution attempt',
    );
    if (!isFinalState(row.state)) {
      throw new StillPendingError(`wallet payment ${paymentId} is still ${row.state} (order state: ${resolution.status})`);
    }
    return { paymentId, state: row.state, outcome: 'resolved' };
  }

  private client(merchant: { id: string; serverUrl: string; merchantId: string; secretsEncrypted: string }, tenantId: string, paymentId: string) {
    return createAssistClient(merchant, openMerchantSecrets(this.secrets, tenantId, merchant.id, merchant.secretsEncrypted), {
      orderStateTimeoutMs: this.config.ASSIST_ORDERSTATE_TIMEOUT_MS,
      fetch: guardedFetch({
        policy: () => this.policyFor(tenantId),
        owner: tenantId,
        allowHttp: true,
        timeoutMs: this.config.ASSIST_ORDERSTATE_TIMEOUT_MS,
        maxResponseBytes: 8 * 1024 * 1024,
      }),
      onIntegrityFailure: (error, context) => {
        this.metrics.integrityFailures.inc({ endpoint: context.endpoint });
        this.logger.error(
          { alert: 'assist_integrity_failure', code: error.code, endpoint: context.endpoint, paymentId, tenantId },
          'Assist answer failed its integrity check and was not trusted',
        );
      },
    });
  }

  /** EGRESS_ALLOW_CIDRS plus the operator's Assist grants to the tenant (read under RLS before each request). */
  private async policyFor(tenantId: string): Promise<EgressPolicy> {
    const grants = await this.db.withTenant(tenantId, (tx) => tx.egressGrant.findMany({ where: { channel: 'ASSIST' }, select: { cidr: true, port: true } }));
    return this.policy.withGrants(grants);
  }

  /**
   * Resolves the payment's open capture / cancel (its answer was lost, or the gateway died mid-call) through
   * orderstate: our operation is matched among the order's operations by type, amount, currency and time, never
   * sent again; once an answer named it ("In Process"), by that billnumber. Records our other operations hold — by
   * billnumber, or settled without one (a person's verdict without a billnumber: `operationClaims`) — are never taken
   * for it; when which records are free cannot be told, it stays UNKNOWN (OPERATION_NOT_PROVEN) for a person. Not
   * listed: within WALLET_NOT_FOUND_GRACE_MS of sending it may still arrive; after that it never reached Assist (FAILED,
   * OPERATION_NOT_FOUND — the client may send a new one), unless Assist named it, which proves it arrived. Only an
   * answer that lists the order's operations, every one like this readable, shows it "not listed" (resolveOperation):
   * one without a list, with a record like it of unreadable date, or a firstcode 10 other than "no such order" leaves it
   * UNKNOWN, and so does "no such order" itself (the payment's order has a billnumber Assist named).
   */
  private async resolveOperations(
    client: ReturnType<WalletResolutionService['client']>,
    payment: {
      id: string;
      tenantId: string;
      orderNumber: string;
      amount: bigint;
      currency: string;
      assistOrder: unknown;
      operations: ClaimingOperation[];
    },
    open: ClaimingOperation[],
  ): Promise<ResolveResult> {
    const { id: paymentId, tenantId } = payment;
    const billNumber = (payment.assistOrder as AssistOrderSummary | null)?.billNumber ?? '';
    let stillOpen = false;
    for (const op of open) {
      const sentAt = op.sentAt ?? op.createdAt;
      // The other operations' records are theirs, never ours; this one's (stored with "In Process") is exactly ours.
      const claims = operationClaims(payment.operations, op, billNumber);
      const resolution = await client.resolveOperation(op.kind === 'CAPTURE' ? 'charge' : 'cancel', {
        billNumber,
        orderNumber: payment.orderNumber,
        orderAmount: toOrderAmount(payment.amount, payment.currency),
        amount: toOrderAmount(op.amount, payment.currency),
        currency: payment.currency,
        sentAt,
        knownBillNumbers: claims.knownBillNumbers,
        unnamedClaims: claims.unnamedClaims,
        operationBillNumber: op.assistBillNumber ?? undefined,
      });
      if (resolution.status === 'not_proven') {
        this.logger.error(
          { alert: 'assist_operation_not_proven', paymentId, tenantId, operationId: op.id, kind: op.kind, billNumbers: resolution.billNumbers },
          'the records Assist lists like this wallet operation may be the ones an operation settled by hand without a billnumber stands for: left to a person',
        );
      }
      let columns: OperationOutcomeColumns;
      if (resolution.status === 'not_found') {
        const silentFor = Date.now() - sentAt.getTime();
        // An operation Assist named did reach it: however long orderstate does not show it, the money may have moved.
        // "No such order" (10 / 201, no `order`) cannot show it missing either: the operation was sent with the order's
        // billnumber, which Assist named, so the order exists and this answer is wrong about it.
        columns =
          op.assistBillNumber === null && resolution.order !== undefined && silentFor > this.config.WALLET_NOT_FOUND_GRACE_MS
            ? {
                to: 'FAILED',
                error: operationNotFoundError({ kind: op.kind, amount: op.amount, currency: payment.currency }, this.config.WALLET_NOT_FOUND_GRACE_MS),
              }
            : { to: 'UNKNOWN' };
      } else {
        columns = settlementOfOperation(resolution);
      }
      if (columns.to === 'UNKNOWN') stillOpen = true;
      const written = await this.db.withTenant(tenantId, (tx) =>
        settleWalletOperation(tx, { operationId: op.id, from: [op.state as 'PENDING' | 'UNKNOWN'], ...columns, countResolutionAttempt: true }),
      );
      this.logger.info(
        { paymentId, tenantId, operationId: op.id, kind: op.kind, resolution: resolution.status, state: written?.operation.state },
        'wallet operation resolution attempt',
      );
      if (!written) stillOpen = true;
    }
    const row = await this.db.withTenant(tenantId, (tx) => tx.walletPayment.findUniqueOrThrow({ where: { id: paymentId } }));
    if (stillOpen) throw new StillPendingError(`wallet payment ${paymentId} has an operation still open`);
    return { paymentId, state: row.state, outcome: 'resolved' };
  }

  /** Payments one sweep takes at most (tests lower it). */
  batchSize = 500;

  /**
   * Re-enqueues resolution for payments left open (PENDING, PROCESSING, REQUIRES_ACTION, UNKNOWN), or with a capture /
   * cancel / refund left open, unchanged for WALLET_SWEEP_OLDER_THAN_MS (job lost with Redis, attempts exhausted,
   * gateway crashed mid-call). Fair: a pass takes the payments never taken first, then the least recently taken, and
   * records that it took them (`sweptAt`, in PostgreSQL), so one taken goes behind every other open one. Payments whose
   * job waits out a long backoff, or that wait for a person (ORDER_NOT_PROVEN, OPERATION_NOT_PROVEN, …), take their turn
   * and no more: every open payment is taken within ceil(open / batchSize) passes (migration `fair_wallet_sweep`).
   */
  async sweep(queue: ResolveQueue): Promise<{ found: number; added: number; retried: number }> {
    const olderThan = `${this.config.WALLET_SWEEP_OLDER_THAN_MS} milliseconds`;
    const rows = await this.db.prisma.$queryRaw<Array<{ id: string; tenantId: string }>>`
      SELECT "id", "tenantId" FROM payorch_unresolved_wallet_payments(${olderThan}::interval, ${this.batchSize}::int)`;
    let added = 0;
    let retried = 0;
    const taken: string[] = [];
    let failure: unknown;
    for (const row of rows) {
      try {
        const result = await ensureResolveJob(
          queue,
          { paymentId: row.id, tenantId: row.tenantId },
          { delayMs: 0, attempts: this.config.WALLET_RESOLVE_ATTEMPTS, backoffMs: this.config.WALLET_RESOLVE_BACKOFF_MS },
        );
        taken.push(row.id);
        if (result === 'added') added++;
        if (result === 'retried') retried++;
      } catch (error) {
        failure = error;
        break;
      }
    }
    // Only the payments whose job was made sure of go to the back: if Redis fails mid-pass, the rest come first next time.
    if (taken.length) await this.db.prisma.$executeRaw`SELECT payorch_mark_wallet_payments_swept(${taken}::uuid[])`;
    if (failure !== undefined) throw failure;
    if (rows.length) this.logger.info({ found: rows.length, added, retried }, 'wallet payment sweep');
    return { found: rows.length, added, retried };
  }
}

/**
 * The billnumber stored on the payment's row (`assistOrder`): Assist named it in an answer about this order number (or a
 * person read it in Assist's back office), so an order exists under the number.
 */
function billNumberOnRow(assistOrder: unknown): string | undefined {
  const billNumber = (assistOrder as Partial<AssistOrderSummary> | null)?.billNumber;
  return typeof billNumber === 'string' && billNumber !== '' ? billNumber : undefined;
}

/** A job that can never succeed (its payment is gone): not retried. */
export class PermanentResolveError extends Error {
  override readonly name = 'PermanentResolveError';
}

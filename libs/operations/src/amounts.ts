import { PayorchError } from '@payorch/domain';

/** Amounts are integer minor units: BigInt columns in the database, JSON numbers in the API. */
export class AmountError extends PayorchError<'AMOUNT_INVALID'> {}

export function toDbAmount(value: number | undefined | null, field = 'amount'): bigint | null {
  if (value === undefined || value === null) return null;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new AmountError('AMOUNT_INVALID', `${field} must be a non-negative integer of minor units ≤ ${Number.MAX_SAFE_INTEGER}`, { field });
  }
  return BigInt(value);
}

export function fromDbAmount(value: bigint | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < 0n) {
    throw new AmountError('AMOUNT_INVALID', `stored amount ${value} is outside the API's safe integer range`);
  }
  return Number(value);
}

import { Prisma } from '@payorch/db';

import type { PaymentChange } from './outcome';

/** Prisma `data` for a PaymentChange: fields the change does not mention are left as stored. */
export function rowDataOfChange(change: PaymentChange) {
  return {
    state: change.state,
    completedAt: change.completedAt,
    error: change.error === null ? Prisma.DbNull : (change.error as unknown as Prisma.InputJsonValue),
    ...(change.assistOrder === undefined ? {} : { assistOrder: change.assistOrder as unknown as Prisma.InputJsonValue }),
    ...(change.maskedPan === undefined ? {} : { maskedPan: change.maskedPan }),
    ...(change.continueUrl === undefined ? {} : { continueUrl: change.continueUrl }),
    ...(change.testMode === undefined ? {} : { testMode: change.testMode }),
  };
}

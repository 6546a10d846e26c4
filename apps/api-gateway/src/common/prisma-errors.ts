import { Prisma } from '@payorch/db';
import { ApiError } from '@payorch/domain';

/** Maps the Prisma errors a request can legitimately cause to domain errors; rethrows the rest. */
export function mapPrismaError(error: unknown, what: { resource: string; id?: string }): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    switch (error.code) {
      case 'P2002':
        throw new ApiError(
          'CONFLICT',
          `${what.resource} with the same ${String((error.meta?.target as string[] | undefined)?.join(', ') ?? 'unique field')} already exists`,
        );
      case 'P2003':
        throw new ApiError('RESOURCE_IN_USE', `${what.resource}${what.id ? ` ${what.id}` : ''} is still referenced by other resources; remove those first`);
      case 'P2025':
        throw new ApiError('NOT_FOUND', `${what.resource}${what.id ? ` ${what.id}` : ''} was not found`);
    }
  }
  throw error;
}

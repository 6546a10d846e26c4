import { defineConfig } from 'prisma/config';

// Prisma 7 reads no .env and needs no URL for `generate`. Migrations are applied by
// scripts/prisma-offline-migrate.mjs (see docs/runbooks/database.md).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL },
});

-- Operator egress grants (docs/security.md, "Operator grants"): a special-purpose range the operator opens to ONE
-- tenant for ONE channel (webhook, Assist, relay), instead of EGRESS_ALLOW_CIDRS, which opens it to every tenant and
-- every channel. Each channel's guard reads the grants of the tenant in context, under row-level security.
-- CreateEnum
CREATE TYPE "EgressChannel" AS ENUM ('ASSIST', 'RELAY', 'WEBHOOK');

-- CreateTable
CREATE TABLE "EgressGrant" (
    "channel" "EgressChannel" NOT NULL,
    "cidr" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdBy" TEXT NOT NULL,
    "description" TEXT,
    "id" UUID NOT NULL,
    "port" INTEGER,
    "tenantId" UUID NOT NULL,

    CONSTRAINT "EgressGrant_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "EgressGrant_port_check" CHECK ("port" IS NULL OR "port" BETWEEN 1 AND 65535)
);

-- CreateIndex
CREATE INDEX "EgressGrant_tenantId_channel_idx" ON "EgressGrant"("tenantId", "channel");

-- AddForeignKey
ALTER TABLE "EgressGrant" ADD CONSTRAINT "EgressGrant_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Tenant-owned: RLS like every tenant table. The application role may only READ its tenant's grants: no INSERT,
-- UPDATE or DELETE, so nothing a tenant reaches (the API, or a bug in it) can grant itself a range. Grants are
-- written by the operator CLI on the owner connection (`npm run admin -- egress grant`).
SELECT payorch_enable_tenant_rls('"EgressGrant"', 'SELECT');

-- Whether a migration is applied, for the services' readiness (libs/health `schemaProbe`): a build of a service names
-- the newest migration it was written against (libs/db SCHEMA_MIGRATION), and stays not ready, and its worker takes no
-- job, until the migration step has applied it. Before, the new pods of a rolling update that started before the
-- migration Job had finished took traffic and jobs against the previous schema and answered errors.
-- SECURITY DEFINER: payorch_app has no privilege on "_prisma_migrations" (the owner's table, written by the migration
-- runner); this answers yes or no about one name and nothing else.
CREATE OR REPLACE FUNCTION payorch_migration_applied(p_name text)
  RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT EXISTS (SELECT 1 FROM "_prisma_migrations" m
                        WHERE m."migration_name" = p_name AND m."finished_at" IS NOT NULL AND m."rolled_back_at" IS NULL) $$;
REVOKE ALL ON FUNCTION payorch_migration_applied(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_migration_applied(text) TO payorch_app;

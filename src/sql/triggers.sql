-- triggers.sql
--	Triggers on the catalogs and the event triggers that keep the rollup's triggers and the schedules in step.

CREATE TRIGGER guard BEFORE INSERT OR UPDATE ON customer_analytics.refresh_schedules FOR EACH ROW EXECUTE FUNCTION customer_analytics._schedule_row_guard();

CREATE TRIGGER release_job AFTER DELETE OR UPDATE OF job_id ON customer_analytics.refresh_schedules FOR EACH ROW EXECUTE FUNCTION customer_analytics._schedule_row_release();

CREATE EVENT TRIGGER customer_analytics_drop ON ddl_command_start
         WHEN TAG IN ('DROP EXTENSION')
   EXECUTE FUNCTION customer_analytics._drop_watch();

CREATE EVENT TRIGGER customer_analytics_rollup_ddl ON ddl_command_end
         WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
   EXECUTE FUNCTION customer_analytics._rollup_ddl_watch();

ALTER EVENT TRIGGER customer_analytics_rollup_ddl ENABLE ALWAYS;

-- catalog_policies.sql
--	Row-level security on the catalogs: every role reads them, only a row's owner writes it.

ALTER TABLE customer_analytics.campaign_launches ENABLE ROW LEVEL SECURITY;

ALTER TABLE customer_analytics.campaign_members ENABLE ROW LEVEL SECURITY;

CREATE POLICY catalog_read ON customer_analytics.campaign_launches FOR SELECT USING (true);

CREATE POLICY owner_writes ON customer_analytics.campaign_launches USING ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_launches.campaign) AND customer_analytics._is_definition_owner(c.owner))))) WITH CHECK ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_launches.campaign) AND customer_analytics._is_definition_owner(c.owner)))));

ALTER TABLE customer_analytics.campaign_launch_state ENABLE ROW LEVEL SECURITY;

CREATE POLICY catalog_read ON customer_analytics.campaign_launch_state FOR SELECT USING (true);

CREATE POLICY owner_writes ON customer_analytics.campaign_launch_state USING ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_launch_state.campaign) AND customer_analytics._is_definition_owner(c.owner))))) WITH CHECK ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_launch_state.campaign) AND customer_analytics._is_definition_owner(c.owner)))));

CREATE POLICY owner_only ON customer_analytics.campaign_members USING ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_members.campaign) AND customer_analytics._is_definition_owner(c.owner))))) WITH CHECK ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_members.campaign) AND customer_analytics._is_definition_owner(c.owner)))));

ALTER TABLE customer_analytics.campaign_refresh_state ENABLE ROW LEVEL SECURITY;

ALTER TABLE customer_analytics.campaigns ENABLE ROW LEVEL SECURITY;

CREATE POLICY catalog_read ON customer_analytics.campaign_refresh_state FOR SELECT USING (true);

CREATE POLICY catalog_read ON customer_analytics.campaigns FOR SELECT USING (true);

CREATE POLICY catalog_read ON customer_analytics.dispatcher_runs FOR SELECT USING (true);

CREATE POLICY catalog_read ON customer_analytics.refresh_schedules FOR SELECT USING (true);

CREATE POLICY catalog_read ON customer_analytics.rollups FOR SELECT USING (true);

CREATE POLICY catalog_read ON customer_analytics.segmentation_refresh_state FOR SELECT USING (true);

CREATE POLICY catalog_read ON customer_analytics.segmentations FOR SELECT USING (true);

CREATE POLICY dispatcher_claims ON customer_analytics.refresh_schedules FOR UPDATE USING (((runner = 'dispatcher'::text) AND (run_as = CURRENT_USER))) WITH CHECK (((runner = 'dispatcher'::text) AND (run_as = CURRENT_USER)));

CREATE POLICY dispatcher_records ON customer_analytics.refresh_history FOR INSERT WITH CHECK (((NOT succeeded) AND (via = 'scheduled'::text) AND customer_analytics._dispatches(kind, name, owner)));

ALTER TABLE customer_analytics.dispatcher_runs ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_row ON customer_analytics.dispatcher_runs USING ((role = CURRENT_USER)) WITH CHECK ((role = CURRENT_USER));

CREATE POLICY owner_deletes ON customer_analytics.campaigns FOR DELETE USING (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_deletes ON customer_analytics.refresh_history FOR DELETE USING (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_deletes ON customer_analytics.rollups FOR DELETE USING (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_deletes ON customer_analytics.segmentations FOR DELETE USING (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_inserts ON customer_analytics.campaigns FOR INSERT WITH CHECK (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_inserts ON customer_analytics.refresh_history FOR INSERT WITH CHECK (customer_analytics._history_writable(kind, name, owner));

CREATE POLICY owner_inserts ON customer_analytics.rollups FOR INSERT WITH CHECK (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_inserts ON customer_analytics.segmentations FOR INSERT WITH CHECK (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_updates ON customer_analytics.campaigns FOR UPDATE USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_updates ON customer_analytics.rollups FOR UPDATE USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_updates ON customer_analytics.segmentations FOR UPDATE USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._is_definition_owner(owner));

CREATE POLICY owner_writes ON customer_analytics.campaign_refresh_state USING ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_refresh_state.campaign) AND customer_analytics._is_definition_owner(c.owner))))) WITH CHECK ((EXISTS ( SELECT 1
   FROM customer_analytics.campaigns c
  WHERE ((c.name = campaign_refresh_state.campaign) AND customer_analytics._is_definition_owner(c.owner)))));

CREATE POLICY owner_writes ON customer_analytics.refresh_schedules USING (customer_analytics._is_definition_owner(owner)) WITH CHECK (customer_analytics._schedule_row_ok(kind, name, owner, run_as));

CREATE POLICY owner_writes ON customer_analytics.segmentation_refresh_state USING ((EXISTS ( SELECT 1
   FROM customer_analytics.segmentations s
  WHERE ((s.name = segmentation_refresh_state.segmentation) AND customer_analytics._is_definition_owner(s.owner))))) WITH CHECK ((EXISTS ( SELECT 1
   FROM customer_analytics.segmentations s
  WHERE ((s.name = segmentation_refresh_state.segmentation) AND customer_analytics._is_definition_owner(s.owner)))));

ALTER TABLE customer_analytics.refresh_history ENABLE ROW LEVEL SECURITY;

ALTER TABLE customer_analytics.refresh_schedules ENABLE ROW LEVEL SECURITY;

ALTER TABLE customer_analytics.rollups ENABLE ROW LEVEL SECURITY;

ALTER TABLE customer_analytics.segmentation_refresh_state ENABLE ROW LEVEL SECURITY;

ALTER TABLE customer_analytics.segmentations ENABLE ROW LEVEL SECURITY;

CREATE POLICY status_read ON customer_analytics.refresh_history FOR SELECT USING (true);

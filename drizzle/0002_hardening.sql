CREATE TABLE `audit_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`created_at` integer NOT NULL,
	`event` text NOT NULL,
	`user_id` text,
	`session_id` text,
	`request_id` text,
	`ip` text,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `audit_events_user_id_id_idx` ON `audit_events` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_created_at_idx` ON `audit_events` (`created_at`);--> statement-breakpoint
ALTER TABLE `rotated_refresh_tokens` ADD `rotated_by` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `access_expires_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `failed_logins` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `last_failed_login_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `locked_until` integer;
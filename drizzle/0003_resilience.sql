CREATE TABLE `password_checks` (
	`id` text PRIMARY KEY NOT NULL,
	`subject` text NOT NULL,
	`started_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `password_checks_subject_started_at_idx` ON `password_checks` (`subject`,`started_at`);--> statement-breakpoint
DROP INDEX `sessions_user_id_idx`;--> statement-breakpoint
ALTER TABLE `sessions` ADD `password_failures` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `sessions_user_id_created_at_idx` ON `sessions` (`user_id`,`created_at`,`id`);--> statement-breakpoint
ALTER TABLE `users` ADD `lock_audited_until` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `password_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `session_epoch` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `epoch_kept_session` text;
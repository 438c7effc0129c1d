DROP INDEX `sessions_user_id_idx`;--> statement-breakpoint
ALTER TABLE `sessions` ADD `password_failures` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `sessions_user_id_created_at_idx` ON `sessions` (`user_id`,`created_at`,`id`);--> statement-breakpoint
ALTER TABLE `users` ADD `lock_audited_until` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `logins_in_flight` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `logins_in_flight_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `session_epoch` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `epoch_kept_session` text;
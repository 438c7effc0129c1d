ALTER TABLE `account_tokens` ADD `session_id` text;--> statement-breakpoint
ALTER TABLE `account_tokens` ADD `way` text;--> statement-breakpoint
ALTER TABLE `account_tokens` ADD `attempts` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `account_tokens_email_purpose_idx` ON `account_tokens` (`email`,`purpose`);--> statement-breakpoint
CREATE INDEX `account_tokens_expires_at_idx` ON `account_tokens` (`expires_at`);--> statement-breakpoint
ALTER TABLE `passkeys` ADD `added_by` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `amr` text DEFAULT '["pwd"]' NOT NULL;--> statement-breakpoint
ALTER TABLE `sessions` ADD `auth_time` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `password_set_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `password_set_by` text;--> statement-breakpoint
ALTER TABLE `users` ADD `email_set_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `email_set_by` text;--> statement-breakpoint
ALTER TABLE `users` ADD `totp_enabled_by` text;--> statement-breakpoint
-- Written by hand (data only; the schema above is drizzle-kit's): rows from before this migration
-- take their creation time as the time of their sign-in and of their password and address.
UPDATE `sessions` SET `auth_time` = `created_at`;--> statement-breakpoint
UPDATE `users` SET `password_set_at` = `created_at`, `email_set_at` = CASE WHEN `email` IS NULL THEN NULL ELSE `created_at` END;

CREATE TABLE `mail_sends` (
	`id` text PRIMARY KEY NOT NULL,
	`recipient` text NOT NULL,
	`purpose` text NOT NULL,
	`created_at` integer NOT NULL,
	`sent_at` integer
);
--> statement-breakpoint
CREATE INDEX `mail_sends_recipient_purpose_created_at_idx` ON `mail_sends` (`recipient`,`purpose`,`created_at`);--> statement-breakpoint
CREATE INDEX `mail_sends_created_at_idx` ON `mail_sends` (`created_at`);--> statement-breakpoint
ALTER TABLE `users` ADD `verify_by` integer;
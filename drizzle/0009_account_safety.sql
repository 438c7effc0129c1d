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
CREATE TABLE `recovery_holds` (
	`user_id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`totp_enabled_at` integer NOT NULL,
	`password_hash` text,
	`mailbox` text,
	`requested_at` integer NOT NULL,
	`due_at` integer NOT NULL,
	`applied_by` text,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `recovery_holds_due_at_idx` ON `recovery_holds` (`due_at`);--> statement-breakpoint
ALTER TABLE `oauth_flows` ADD `exchange_challenge` text;--> statement-breakpoint
ALTER TABLE `users` ADD `verify_by` integer;
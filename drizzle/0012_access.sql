CREATE TABLE `mail_sign_ins` (
	`id` text PRIMARY KEY NOT NULL,
	`email` text NOT NULL,
	`user_id` text,
	`token_hash` text NOT NULL,
	`code_hash` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `mail_sign_ins_token_hash_unique` ON `mail_sign_ins` (`token_hash`);--> statement-breakpoint
CREATE INDEX `mail_sign_ins_email_created_at_idx` ON `mail_sign_ins` (`email`,`created_at`);--> statement-breakpoint
CREATE INDEX `mail_sign_ins_expires_at_idx` ON `mail_sign_ins` (`expires_at`);--> statement-breakpoint
DROP INDEX `users_username_lower_unique`;--> statement-breakpoint
ALTER TABLE `users` ADD `is_guest` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX `users_is_guest_created_at_idx` ON `users` (`is_guest`,`created_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `users_username_lower_unique` ON `users` (lower("username")) WHERE "users"."username" <> '';
CREATE TABLE `oauth_clients` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`uri` text,
	`redirect_uris` text NOT NULL,
	`secret_hash` text,
	`grant_types` text NOT NULL,
	`scope` text NOT NULL,
	`resources` text NOT NULL,
	`source` text NOT NULL,
	`created_at` integer NOT NULL,
	`disabled_at` integer,
	`expires_at` integer,
	`first_token_at` integer
);
--> statement-breakpoint
CREATE INDEX `oauth_clients_expires_at_idx` ON `oauth_clients` (`expires_at`);--> statement-breakpoint
CREATE TABLE `oauth_consents` (
	`user_id` text NOT NULL,
	`client_id` text NOT NULL,
	`resource` text NOT NULL,
	`scope` text NOT NULL,
	`session_epoch` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `client_id`, `resource`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`client_id`) REFERENCES `oauth_clients`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `oauth_consents_client_id_idx` ON `oauth_consents` (`client_id`);--> statement-breakpoint
CREATE TABLE `oauth_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`redirect_uri` text NOT NULL,
	`state` text,
	`scope` text NOT NULL,
	`resource` text,
	`code_challenge` text NOT NULL,
	`nonce` text,
	`prompt` text,
	`max_age` integer,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`session_id` text,
	`user_id` text,
	`decided_at` integer,
	`approved` integer,
	`auth_time` integer,
	`amr` text,
	`code_hash` text,
	`code_expires_at` integer,
	`code_used_at` integer,
	`grant_id` text,
	FOREIGN KEY (`client_id`) REFERENCES `oauth_clients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `oauth_requests_code_hash_unique` ON `oauth_requests` (`code_hash`);--> statement-breakpoint
CREATE INDEX `oauth_requests_expires_at_idx` ON `oauth_requests` (`expires_at`);--> statement-breakpoint
ALTER TABLE `sessions` ADD `client_id` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `scope` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `resource` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `approved_by` text;--> statement-breakpoint
CREATE INDEX `sessions_client_id_idx` ON `sessions` (`client_id`);
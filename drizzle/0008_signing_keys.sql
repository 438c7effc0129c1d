CREATE TABLE `signing_keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`state` text NOT NULL,
	`public_jwk` text NOT NULL,
	`sealed_private_jwk` text,
	`origin` text NOT NULL,
	`created_at` integer NOT NULL,
	`published_at` integer,
	`activated_at` integer,
	`deactivated_at` integer,
	`retire_after` integer,
	`retired_at` integer,
	`retired_reason` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `signing_keys_one_current` ON `signing_keys` (`state`) WHERE state = 'current';--> statement-breakpoint
CREATE UNIQUE INDEX `signing_keys_one_next` ON `signing_keys` (`state`) WHERE state = 'next';
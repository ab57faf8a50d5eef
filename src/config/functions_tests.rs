//! Tests of `[[function]]` and function routes: every error with its key and line, the issue's
//! block as written, defaults, the hidden upstream of a remote function, and warnings.

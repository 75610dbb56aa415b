// Behaviour of the Jobs page.

// Errors the server's services throw that mean something to a client: the HTTP error handler
// answers each with its status code and message.

/** No such app, node, instance, release or token. */
export class NotFoundError extends Error {
  readonly statusCode = 404;
}

/** Refused because of the state things are in (changed concurrently, already so, not connected). */
export class ConflictError extends Error {
  readonly statusCode = 409;
}

/** The caller may not do this to this resource (decided where the resource is known only from the body). */
export class ForbiddenError extends Error {
  readonly statusCode = 403;
}

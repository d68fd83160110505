// Package policy evaluates the Rego modules that cluster admins write into
// ConnectorClasses, with the Open Policy Agent's rego package: the auth
// extractor of spec.proxy.authExtractor.rego, which finds the client's token
// in a request (Engine.Token), and the generators of
// spec.auth.types[].generator.rego, which turn a Secret's data into the
// credentials the gateway injects into the upstream request
// (Engine.Generate). The reconciler checks a module with Engine.Check to set
// a condition.
//
// Every module declares `package proxy` and defines data.proxy.auth:
//
//   - an auth extractor yields {"token": "<string>"}, or leaves auth
//     undefined when the request carries no token;
//   - a generator yields {"position": "header"|"query"|"body",
//     "contentType": "<optional string>", "auth": {"<name>": "<string>"}}.
//
// Both see input.request: headers (canonical MIME keys to lists of values),
// query (names to lists of values), body (the parsed JSON body; absent when
// the body is not JSON), method, path and host. A generator also sees
// input.data, the Secret's decoded data. An example generator:
//
//	package proxy
//
//	auth := {"position": "header", "auth": {"Private-Token": input.data.token}}
//
// Modules may be written in Rego v1 or in the older v0 syntax (rules
// without `if`): a module that does not parse as v1 is parsed as v0.
//
// Bounds. A prepared query is compiled once per distinct module text and
// kept in a bounded LRU cache, failed compilations included, so a broken
// module is not compiled again on every request. An evaluation is bounded by
// Options.Timeout. Built-in functions that reach the network, the file
// system or the process (http.send, net.lookup_ip_addr, opa.runtime,
// json.match_schema and json.verify_schema, whose $ref can load files or
// URLs), trace and rego.parse_module are refused at compile time; print
// statements are erased; no host is allowed for network access; built-in
// errors are fatal (strict mode) rather than making a rule undefined.
//
// Errors start with "policy: " and are one line. They never hold the values
// of the Secret's data or of the request: the message of a failed built-in
// function can hold its arguments, so it is withheld (the function name and
// the module position are kept), and in other messages any value of the
// request or the data is replaced by "[redacted]".
package policy

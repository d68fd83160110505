// Package sandbox runs the Go text/template templates that cluster admins
// write into ConnectorClasses — configuration files (package render) and
// probe paths and headers (package reconciler) — with one set of bounds.
//
// Templates get text/template with the sprig v3 functions, except those that
// read the process environment (env, expandenv) or generate keys and
// certificates. The functions that allocate by a numeric argument (repeat,
// until, untilStep, seq, indent, nindent, the rand* family) refuse before
// they allocate more than the byte bound, or an eighth of it in list items,
// and every function's string, list or map result is checked against the
// same bound, so repeated doubling stops at it.
//
// An execution is bounded in output bytes and in time. A run past its time
// is abandoned: the caller gets an error at once, every later function call
// of the abandoned run fails, and the run keeps one of a fixed number of
// process-wide execution slots until it really ends, so runaway templates
// cannot pile up goroutines and memory.
//
// Error messages hold positions, function names and numbers only: the
// message of a failed function can carry the template's data (a token), so
// it is withheld.
package sandbox

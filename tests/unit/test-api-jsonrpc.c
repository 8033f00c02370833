/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for api/jsonrpc, api/schema and api/session: parsing and
 * classification of every malformed shape, parameter validation, method
 * dispatch, batches, notifications, asynchronous replies, limits, and
 * golden wire frames (byte-exact request/response pairs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/jsonrpc.h"
#include "api/schema.h"
#include "api/session.h"

/* ------------------------------------------------------------ parsing */

static int parse(const char *text, json_object **ret, struct api_error *err)
{
	return jsonrpc_parse(text, strlen(text), ret, err);
}

static void expect_parse_error(const char *text, const char *fragment)
{
	struct api_error err = { 0 };
	json_object *o = NULL;

	assert_int_equal(parse(text, &o, &err), -EINVAL);
	assert_null(o);
	assert_int_equal(err.code, API_ERR_PARSE);
	if (!strstr(err.message, fragment))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.message, fragment);
}

static void test_parse_valid_object(void **state)
{
	json_object *o = NULL;
	struct api_error err;

	assert_int_equal(parse("{\"a\": [1, 2, {\"b\": null}]}", &o, &err), 0);
	assert_true(json_object_is_type(o, json_type_object));
	json_object_put(o);
}

static void test_parse_malformed(void **state)
{
	expect_parse_error("{\"a\":", "ends inside");		/* truncated */
	expect_parse_error("{\"a\" 1}", "parse error at byte");	/* missing colon */
	expect_parse_error("{'a': 1}", "byte 1: single quotes are not JSON");
	expect_parse_error("{\"it's\": 1", "ends inside"); /* a quote inside a string is fine */
	expect_parse_error("{\"a\": 1,}", "parse error");	/* trailing comma */
	expect_parse_error("{\"a\": 1} {\"b\": 2}", "parse error at byte 9"); /* two values */
	expect_parse_error("{\"a\": 1} x", "parse error at byte 9");
	expect_parse_error("{\"a\": tru}", "parse error");
	expect_parse_error("nul", "parse error");
}

static void test_parse_rejects_embedded_nul(void **state)
{
	static const char text[] = "{\"a\": 1}\0{\"b\": 2}";
	struct api_error err = { 0 };
	json_object *o = NULL;

	assert_int_equal(jsonrpc_parse(text, sizeof(text) - 1, &o, &err), -EINVAL);
	assert_int_equal(err.code, API_ERR_PARSE);
	assert_non_null(strstr(err.message, "trailing data"));
}

static void test_parse_bare_scalars(void **state)
{
	json_object *o = NULL;
	struct api_error err;

	/* Valid JSON texts (RFC 8259), rejected later as requests. */
	assert_int_equal(parse("42", &o, &err), 0);
	assert_int_equal(json_object_get_int(o), 42);
	json_object_put(o);
	assert_int_equal(parse("true", &o, &err), 0);
	json_object_put(o);
}

static void test_parse_rejects_invalid_utf8(void **state)
{
	expect_parse_error("{\"a\": \"\xff\xfe\"}", "parse error");
	expect_parse_error("{\"a\": \"\xc3\"}", "parse error"); /* cut multibyte */
}

static void test_parse_rejects_deep_nesting(void **state)
{
	char buf[256];
	size_t n = 0;

	for (int i = 0; i < 40; i++)
		buf[n++] = '[';
	for (int i = 0; i < 40; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	expect_parse_error(buf, "parse error");
}

/* ------------------------------------------------------------ classify */

static void classify_text(const char *text, struct jsonrpc_msg *m, int *rc, int *code,
			  json_object **root, json_object **id)
{
	struct api_error err = { 0 };

	assert_int_equal(parse(text, root, &err), 0);
	*rc = jsonrpc_classify(*root, m, id, &err);
	*code = err.code;
}

static void expect_invalid(const char *text, const char *fragment)
{
	struct jsonrpc_msg m;
	struct api_error err = { 0 };
	json_object *root = NULL, *id;

	assert_int_equal(parse(text, &root, &err), 0);
	assert_int_equal(jsonrpc_classify(root, &m, &id, &err), -EINVAL);
	assert_int_equal(err.code, API_ERR_INVALID_REQUEST);
	if (!strstr(err.message, fragment))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.message, fragment);
	json_object_put(root);
}

static void test_classify_request_and_notification(void **state)
{
	struct jsonrpc_msg m;
	json_object *root, *id;
	int rc, code;

	classify_text("{\"jsonrpc\":\"2.0\",\"method\":\"vm.list\",\"id\":7}", &m, &rc, &code,
		      &root, &id);
	assert_int_equal(rc, 0);
	assert_int_equal(m.kind, JSONRPC_REQUEST);
	assert_string_equal(m.method, "vm.list");
	assert_int_equal(json_object_get_int(m.id), 7);
	assert_null(m.params);
	json_object_put(root);

	classify_text("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"a\":1}}", &m, &rc,
		      &code, &root, &id);
	assert_int_equal(rc, 0);
	assert_int_equal(m.kind, JSONRPC_NOTIFICATION);
	assert_non_null(m.params);
	json_object_put(root);

	/* A null id is a request (it gets a reply), not a notification. */
	classify_text("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":null}", &m, &rc, &code, &root,
		      &id);
	assert_int_equal(rc, 0);
	assert_int_equal(m.kind, JSONRPC_REQUEST);
	json_object_put(root);

	classify_text("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":\"abc\"}", &m, &rc, &code,
		      &root, &id);
	assert_int_equal(rc, 0);
	assert_string_equal(json_object_get_string(m.id), "abc");
	json_object_put(root);
}

static void test_classify_responses(void **state)
{
	struct jsonrpc_msg m;
	json_object *root, *id;
	int rc, code;

	classify_text("{\"jsonrpc\":\"2.0\",\"result\":{\"x\":1},\"id\":3}", &m, &rc, &code, &root,
		      &id);
	assert_int_equal(rc, 0);
	assert_int_equal(m.kind, JSONRPC_RESULT);
	json_object_put(root);

	classify_text("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32001,\"message\":\"no\"},\"id\":3}",
		      &m, &rc, &code, &root, &id);
	assert_int_equal(rc, 0);
	assert_int_equal(m.kind, JSONRPC_ERROR);
	assert_int_equal(m.error_code, -32001);
	assert_string_equal(m.error_message, "no");
	json_object_put(root);
}

static void test_classify_invalid_shapes(void **state)
{
	expect_invalid("[]", "expected a JSON object, got array");
	expect_invalid("42", "expected a JSON object");
	expect_invalid("\"vm.list\"", "expected a JSON object");
	expect_invalid("{\"method\":\"x\",\"id\":1}", "'jsonrpc' must be \"2.0\"");
	expect_invalid("{\"jsonrpc\":\"1.0\",\"method\":\"x\",\"id\":1}", "'jsonrpc' must be");
	expect_invalid("{\"jsonrpc\":2.0,\"method\":\"x\",\"id\":1}", "'jsonrpc' must be");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", "'method' must be a string");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":5,\"id\":1}",
		       "'params' must be an object or an array");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":\"s\",\"id\":1}",
		       "'params' must be");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":{}}", "'id' must be");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":[1]}", "'id' must be");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":1.5}", "'id' must be");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":true}", "'id' must be");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":1,\"extra\":1}",
		       "unknown member 'extra'");
	expect_invalid("{\"jsonrpc\":\"2.0\"}", "'method' is required");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1}", "exactly one of 'result' and 'error'");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", "exactly one");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"m\"}}",
		       "integer 'code'");
}

static void test_classify_refuses_nul_in_method(void **state)
{
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"vm.list\\u0000x\",\"id\":1}",
		       "invalid request: 'method' must not contain NUL characters");
	expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"\\u0000\",\"id\":1}",
		       "'method' must not contain NUL");
}

static void test_classify_keeps_id_of_invalid_request(void **state)
{
	struct jsonrpc_msg m;
	json_object *root, *id;
	int rc, code;

	classify_text("{\"jsonrpc\":\"2.0\",\"method\":7,\"id\":99}", &m, &rc, &code, &root, &id);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(code, API_ERR_INVALID_REQUEST);
	assert_non_null(id);
	assert_int_equal(json_object_get_int(id), 99);
	json_object_put(root);
}

/* ------------------------------------------------------------ schema */

static const char *const boot_choices[] = { "multiboot", "flat", NULL };

static const struct api_param test_schema[] = {
	{ .name = "name", .type = API_T_STRING, .required = true, .max_len = 8 },
	{ .name = "memory", .type = API_T_INT, .min = 1, .max = 1024 },
	{ .name = "addr", .type = API_T_U64 },
	{ .name = "flag", .type = API_T_BOOL },
	{ .name = "boot", .type = API_T_ENUM, .choices = boot_choices },
	{ .name = "cpu", .type = API_T_OBJECT },
	{ .name = "list", .type = API_T_ARRAY },
	{ 0 },
};

static int validate_text(const char *params_text, struct api_error *err)
{
	json_object *p = NULL;
	int rc;

	if (params_text)
		assert_int_equal(parse(params_text, &p, err), 0);
	rc = api_params_validate(test_schema, p, err);
	json_object_put(p);
	return rc;
}

static void expect_param_error(const char *params_text, const char *fragment)
{
	struct api_error err = { 0 };

	assert_int_equal(validate_text(params_text, &err), -EINVAL);
	assert_int_equal(err.code, API_ERR_INVALID_PARAMS);
	if (!strstr(err.message, fragment))
		fail_msg("%s: message '%s' lacks '%s'", params_text, err.message, fragment);
}

static void test_schema_accepts_valid(void **state)
{
	struct api_error err;

	assert_int_equal(validate_text("{\"name\":\"a\"}", &err), 0);
	assert_int_equal(validate_text("{\"name\":\"abcdefgh\",\"memory\":1024,\"addr\":\"0xffffffffffffffff\","
				       "\"flag\":false,\"boot\":\"flat\",\"cpu\":{},\"list\":[]}",
				       &err),
			 0);
	assert_int_equal(validate_text("{\"name\":\"a\",\"memory\":null}", &err), 0);
	assert_int_equal(validate_text("{\"name\":\"a\",\"addr\":18446744073709551614}", &err), 0);
}

/* A range's unit and the limit behind its upper end appear in the message. */
static void test_schema_names_the_limit(void **state)
{
	static const struct api_param schema[] = {
		{ .name = "len", .type = API_T_INT, .min = 1, .max = 65536, .unit = "bytes",
		  .bound = "the memory-read limit" },
		{ 0 },
	};
	struct api_error err = { 0 };
	json_object *p = NULL;

	assert_int_equal(parse("{\"len\":70000}", &p, &err), 0);
	assert_int_equal(api_params_validate(schema, p, &err), -EINVAL);
	assert_string_equal(err.message, "parameter 'len' must be between 1 and 65536 bytes (the "
					 "memory-read limit), got 70000");
	json_object_put(p);
}

static void test_schema_rejects_bad_params(void **state)
{
	expect_param_error(NULL, "missing required parameter 'name'");
	expect_param_error("{}", "missing required parameter 'name'");
	expect_param_error("[\"a\"]", "named parameters, not an array");
	expect_param_error("{\"name\":\"a\",\"bogus\":1}", "unknown parameter 'bogus'");
	expect_param_error("{\"name\":5}", "parameter 'name' must be a string, got integer");
	expect_param_error("{\"name\":\"abcdefghi\"}", "parameter 'name' is too long (9 bytes, limit 8)");
	expect_param_error("{\"name\":\"a\\u0000b\"}", "must not contain NUL");
	expect_param_error("{\"name\":\"a\",\"memory\":\"64\"}", "parameter 'memory' must be an integer, got string");
	expect_param_error("{\"name\":\"a\",\"memory\":1.5}", "parameter 'memory' must be an integer, got number");
	expect_param_error("{\"name\":\"a\",\"memory\":0}", "between 1 and 1024, got 0");
	expect_param_error("{\"name\":\"a\",\"memory\":1025}", "between 1 and 1024, got 1025");
	expect_param_error("{\"name\":\"a\",\"memory\":-5}", "got -5");
	expect_param_error("{\"name\":\"a\",\"memory\":99999999999999999999999}", "parameter 'memory'");
	expect_param_error("{\"name\":null}", "parameter 'name' must be a string, got null");
	expect_param_error("{\"name\":\"a\",\"addr\":-1}", "'addr' must not be negative");
	expect_param_error("{\"name\":\"a\",\"addr\":\"0x\"}", "'addr' must be an unsigned integer or a string");
	expect_param_error("{\"name\":\"a\",\"addr\":\"12z\"}", "'addr' must be");
	expect_param_error("{\"name\":\"a\",\"addr\":\"-1\"}", "'addr' must be");
	expect_param_error("{\"name\":\"a\",\"addr\":\"0x10000000000000000\"}", "does not fit in 64 bits");
	/* As JSON integers, 2^64 and beyond arrive clamped to 2^64-1. */
	expect_param_error("{\"name\":\"a\",\"addr\":18446744073709551616}", "'addr' does not fit in 64 bits, or is 2^64-1");
	expect_param_error("{\"name\":\"a\",\"addr\":18446744073709551615}", "give 64-bit values as a string");
	expect_param_error("{\"name\":\"a\",\"addr\":1.5}", "'addr' must be an unsigned integer or a hex string, got number");
	expect_param_error("{\"name\":\"a\",\"addr\":true}", "'addr' must be an unsigned integer or a hex string, got boolean");
	expect_param_error("{\"name\":\"a\",\"flag\":1}", "'flag' must be a boolean, got integer");
	expect_param_error("{\"name\":\"a\",\"boot\":\"bios\"}", "'boot' must be one of: multiboot, flat; got \"bios\"");
	expect_param_error("{\"name\":\"a\",\"boot\":1}", "'boot' must be a string");
	expect_param_error("{\"name\":\"a\",\"cpu\":[]}", "'cpu' must be an object, got array");
	expect_param_error("{\"name\":\"a\",\"list\":{}}", "'list' must be an array, got object");
}

static void expect_range_message(const char *value_text, int64_t min, int64_t max,
				 const char *unit, const char *why, const char *message)
{
	struct api_error err = { 0 };
	json_object *v = NULL;

	assert_int_equal(parse(value_text, &v, &err), 0);
	assert_false(api_int_in_range(v, min, max));
	assert_int_equal(api_param_range_error(&err, "memory", v, min, max, unit, why), -EINVAL);
	assert_int_equal(err.code, API_ERR_INVALID_PARAMS);
	assert_string_equal(err.message, message);
	json_object_put(v);
}

/* One wording for every range error: the whole range, its unit and source,
 * and the value as given, also beyond 64 bits where json-c clamps it. */
static void test_range_errors_state_range_and_value(void **state)
{
	json_object *v;

	expect_range_message("-1", 2, 24105, "MiB", "the host's RAM",
			     "parameter 'memory' must be between 2 and 24105 MiB (the host's RAM), got -1");
	expect_range_message("1", 2, 24105, "MiB", NULL,
			     "parameter 'memory' must be between 2 and 24105 MiB, got 1");
	expect_range_message("0", 1, 288, NULL, "vmmd's limit",
			     "parameter 'memory' must be between 1 and 288 (vmmd's limit), got 0");
	expect_range_message("9223372036854775808", 0, INT64_MAX, NULL, NULL,
			     "parameter 'memory' must be between 0 and 9223372036854775807, got 9223372036854775808");
	expect_range_message("100000000000000000000000", 2, 24105, "MiB", NULL,
			     "parameter 'memory' must be between 2 and 24105 MiB, got 18446744073709551615 or more");
	expect_range_message("-100000000000000000000000", 2, 24105, "MiB", NULL,
			     "parameter 'memory' must be between 2 and 24105 MiB, got -9223372036854775808 or less");
	v = json_object_new_int64(INT64_MAX);
	assert_true(api_int_in_range(v, 0, INT64_MAX));
	json_object_put(v);
	v = json_object_new_int64(5);
	assert_true(api_int_in_range(v, 5, 5));
	assert_false(api_int_in_range(v, 6, 10));
	json_object_put(v);
}

static void test_schema_getters(void **state)
{
	json_object *p;
	struct api_error err;

	assert_int_equal(parse("{\"name\":\"n\",\"memory\":64,\"addr\":\"0x1000\",\"flag\":true}", &p,
			       &err),
			 0);
	assert_string_equal(api_param_string(p, "name", NULL), "n");
	assert_int_equal(api_param_int(p, "memory", 0), 64);
	assert_int_equal(api_param_u64(p, "addr", 0), 0x1000);
	assert_true(api_param_bool(p, "flag", false));
	assert_int_equal(api_param_int(p, "absent", 17), 17);
	assert_string_equal(api_param_string(p, "absent", "def"), "def");
	json_object_put(p);
}

static void test_parse_u64_forms(void **state)
{
	uint64_t v;

	assert_int_equal(api_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(api_parse_u64("0xFFFFffff00000000", &v), 0);
	assert_true(v == 0xFFFFFFFF00000000ULL);
	assert_int_equal(api_parse_u64("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(api_parse_u64("", &v), -EINVAL);
	assert_int_equal(api_parse_u64(" 1", &v), -EINVAL);
	assert_int_equal(api_parse_u64("+1", &v), -EINVAL);
	assert_int_equal(api_parse_u64("1 ", &v), -EINVAL);
	assert_int_equal(api_parse_u64("18446744073709551616", &v), -ERANGE);
}

/* ------------------------------------------------------------ session */

struct sink {
	char out[16][1024];
	int n;
	struct api_call *parked; /* a call answered later */
};

static int sink_send(void *conn, json_object *msg)
{
	struct sink *s = conn;
	size_t len;
	const char *t = jsonrpc_to_text(msg, &len);

	assert_true(s->n < 16);
	snprintf(s->out[s->n++], sizeof(s->out[0]), "%s", t);
	return 0;
}

static const struct api_session_ops sink_ops = { .send = sink_send };

static void h_echo(struct api_call *call, json_object *params, void *ctx)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "name", json_object_new_string(api_param_string(params, "name", "")));
	api_call_reply(call, r);
}

static void h_fail(struct api_call *call, json_object *params, void *ctx)
{
	api_call_fail(call, API_ERR_VM_NOT_FOUND, "VM '%s' not found", api_param_string(params, "name", ""));
}

static void h_park(struct api_call *call, json_object *params, void *ctx)
{
	struct sink *s = ctx;

	s->parked = call;
}

static const struct api_param name_schema[] = {
	{ .name = "name", .type = API_T_STRING, .required = true },
	{ 0 },
};

static const struct api_method methods[] = {
	{ .name = "t.echo", .handler = h_echo, .params = name_schema,
	  .needs = API_NEED_READ_ONLY },
	{ .name = "t.fail", .handler = h_fail, .params = name_schema,
	  .needs = API_NEED_READ_ONLY },
	{ .name = "t.park", .handler = h_park, .params = (const struct api_param[]){ { 0 } },
	  .needs = API_NEED_READ_ONLY },
	/* Says nothing about access: needs full access. */
	{ .name = "t.write", .handler = h_echo, .params = name_schema },
};

static struct api_session *new_session(struct sink *sink, bool ro, unsigned int max_in_flight)
{
	struct api_session_config cfg = {
		.methods = methods,
		.nr_methods = 4,
		.access = ro ? API_ACCESS_READ_ONLY : API_ACCESS_FULL,
		.max_in_flight = max_in_flight,
	};

	memset(sink, 0, sizeof(*sink));
	return api_session_new(&cfg, &sink_ops, sink, sink);
}

static void feed_session(struct api_session *s, const char *text)
{
	json_object *o;
	struct api_error err;

	if (parse(text, &o, &err) < 0) {
		api_session_bad_message(s, &err);
		return;
	}
	api_session_handle(s, o);
	json_object_put(o);
}

/* Over a session: one error reply with the id, and no handler runs. */
static void test_session_refuses_nul_in_method(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);

	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\\u0000x\","
			"\"params\":{\"name\":\"n\"},\"id\":5}");
	assert_int_equal(sink.n, 1);
	assert_string_equal(sink.out[0],
			    "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32600,\"message\":"
			    "\"invalid request: 'method' must not contain NUL characters\"}}");
	api_session_free(s);
}

/* Golden wire frames: exact bytes in, exact bytes out. */
static void test_golden_wire_pairs(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} golden[] = {
		/* Request by name: result object, id echoed as given (string). */
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"web1\"},\"id\":\"a\"}",
		  "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"name\":\"web1\"}}" },
		/* Handler error: project code, message naming the object. */
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"t.fail\",\"params\":{\"name\":\"db\"},\"id\":1}",
		  "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32001,\"message\":\"VM 'db' not found\"}}" },
		/* Unknown method: -32601. */
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"vm.fly\",\"id\":2}",
		  "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32601,\"message\":\"method 'vm.fly' not found\"}}" },
		/* Bad params: -32602 naming the field. */
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":1},\"id\":3}",
		  "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,\"message\":\"parameter 'name' must be a string, got integer\"}}" },
		/* Invalid request keeps its id. */
		{ "{\"jsonrpc\":\"1.0\",\"method\":\"t.echo\",\"id\":4}",
		  "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32600,\"message\":\"invalid request: 'jsonrpc' must be \\\"2.0\\\"\"}}" },
		/* Parse error: id null. */
		{ "{\"jsonrpc\":",
		  "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"parse error: message ends inside a JSON value\"}}" },
		/* Null id is answered with a null id. */
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"n\"},\"id\":null}",
		  "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{\"name\":\"n\"}}" },
	};
	struct sink sink;

	for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		struct api_session *s = new_session(&sink, false, 0);
		feed_session(s, golden[i].in);
		assert_int_equal(sink.n, 1);
		assert_string_equal(sink.out[0], golden[i].out);
		api_session_free(s);
	}
}

static void test_notification_gets_no_reply(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);

	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"x\"}}");
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.fail\",\"params\":{\"name\":\"x\"}}");
	/* Even an unknown method or bad params stay silent for notifications. */
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}");
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{}}");
	assert_int_equal(sink.n, 0);
	assert_int_equal(api_session_in_flight(s), 0);
	api_session_free(s);
}

static void test_batch_mixed(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);
	json_object *arr;
	struct api_error err;

	feed_session(s, "[{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"a\"},\"id\":1},"
			"{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"n\"}},"
			"{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2},"
			"5,"
			"{\"jsonrpc\":\"2.0\",\"method\":\"t.fail\",\"params\":{\"name\":\"b\"},\"id\":3}]");
	assert_int_equal(sink.n, 1);
	assert_int_equal(parse(sink.out[0], &arr, &err), 0);
	assert_true(json_object_is_type(arr, json_type_array));
	/* Four replies: the notification gets none, the bare 5 gets an error. */
	assert_int_equal(json_object_array_length(arr), 4);
	json_object_put(arr);
	assert_non_null(strstr(sink.out[0], "\"result\":{\"name\":\"a\"}"));
	assert_non_null(strstr(sink.out[0], "method 'nope' not found"));
	assert_non_null(strstr(sink.out[0], "expected a JSON object, got int"));
	assert_non_null(strstr(sink.out[0], "VM 'b' not found"));
	api_session_free(s);
}

static void test_batch_of_notifications_sends_nothing(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);

	feed_session(s, "[{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"a\"}},"
			"{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"b\"}}]");
	assert_int_equal(sink.n, 0);
	api_session_free(s);
}

static void test_batch_empty_and_oversized(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);
	char big[JSONRPC_MAX_BATCH * 4 + 64];
	size_t n = 0;

	feed_session(s, "[]");
	assert_int_equal(sink.n, 1);
	assert_string_equal(sink.out[0], "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"invalid request: empty batch\"}}");

	big[n++] = '[';
	for (int i = 0; i <= JSONRPC_MAX_BATCH; i++)
		n += (size_t)sprintf(big + n, "%s1", i ? "," : "");
	big[n++] = ']';
	big[n] = '\0';
	feed_session(s, big);
	assert_int_equal(sink.n, 2);
	assert_non_null(strstr(sink.out[1], "exceeds the limit of 128"));
	api_session_free(s);
}

static void test_async_batch_waits_for_every_member(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);

	feed_session(s, "[{\"jsonrpc\":\"2.0\",\"method\":\"t.park\",\"id\":1},"
			"{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"a\"},\"id\":2}]");
	assert_int_equal(sink.n, 0);
	assert_non_null(sink.parked);
	assert_int_equal(api_session_in_flight(s), 1);
	api_call_reply(sink.parked, json_object_new_string("late"));
	assert_int_equal(sink.n, 1);
	assert_non_null(strstr(sink.out[0], "\"result\":\"late\""));
	assert_non_null(strstr(sink.out[0], "\"result\":{\"name\":\"a\"}"));
	assert_int_equal(api_session_in_flight(s), 0);
	api_session_free(s);
}

static void test_reply_after_client_left_is_dropped(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);
	struct api_call *c;

	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.park\",\"id\":1}");
	c = sink.parked;
	assert_non_null(c);
	assert_false(api_call_is_orphan(c));
	api_session_free(s);
	assert_true(api_call_is_orphan(c));
	assert_null(api_call_conn(c));
	api_call_reply(c, json_object_new_int(1));
	assert_int_equal(sink.n, 0);
}

static void test_read_only_session_refuses_writes(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, true, 0);

	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.write\",\"params\":{\"name\":\"x\"},\"id\":1}");
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"x\"},\"id\":2}");
	assert_int_equal(sink.n, 2);
	assert_non_null(strstr(sink.out[0], "-32006"));
	assert_non_null(strstr(sink.out[0], "t.write needs full access and this connection is read-only"));
	assert_non_null(strstr(sink.out[1], "\"result\""));
	api_session_free(s);
}

static int denied_count;
static char denied_why[256];

static void sink_denied(void *conn, const struct api_method *m, const char *why)
{
	denied_count++;
	snprintf(denied_why, sizeof(denied_why), "%s: %s", m->name, why);
}

static void test_unauthorised_session_refuses_everything_and_reports_it(void **state)
{
	static const struct api_session_ops ops = { .send = sink_send, .denied = sink_denied };
	struct api_session_config cfg = {
		.methods = methods,
		.nr_methods = 4,
		.access = API_ACCESS_NONE,
		.access_reason = "uid 1000 is not in group 'vmmd'",
	};
	struct sink sink = { 0 };
	struct api_session *s = api_session_new(&cfg, &ops, &sink, &sink);

	denied_count = 0;
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"x\"},\"id\":1}");
	assert_int_equal(sink.n, 1);
	assert_string_equal(sink.out[0], "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32006,"
					 "\"message\":\"permission denied: uid 1000 is not in group 'vmmd'\"}}");
	assert_int_equal(denied_count, 1);
	assert_string_equal(denied_why, "t.echo: permission denied: uid 1000 is not in group 'vmmd'");
	api_session_free(s);
}

static void test_in_flight_limit(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 1);
	struct api_call *first;

	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.park\",\"id\":1}");
	first = sink.parked;
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"x\"},\"id\":2}");
	assert_int_equal(sink.n, 1);
	assert_non_null(strstr(sink.out[0], "too many requests in flight on this connection (limit 1)"));
	api_call_reply(first, json_object_new_int(0));
	feed_session(s, "{\"jsonrpc\":\"2.0\",\"method\":\"t.echo\",\"params\":{\"name\":\"x\"},\"id\":3}");
	assert_int_equal(sink.n, 3);
	assert_non_null(strstr(sink.out[2], "\"id\":3,\"result\""));
	api_session_free(s);
}

static void test_stray_response_is_invalid(void **state)
{
	struct sink sink;
	struct api_session *s = new_session(&sink, false, 0);

	feed_session(s, "{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":1}");
	assert_int_equal(sink.n, 1);
	assert_non_null(strstr(sink.out[0], "unexpected response object"));
	api_session_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid_object),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_rejects_embedded_nul),
		cmocka_unit_test(test_parse_bare_scalars),
		cmocka_unit_test(test_parse_rejects_invalid_utf8),
		cmocka_unit_test(test_parse_rejects_deep_nesting),
		cmocka_unit_test(test_classify_request_and_notification),
		cmocka_unit_test(test_classify_responses),
		cmocka_unit_test(test_classify_invalid_shapes),
		cmocka_unit_test(test_classify_refuses_nul_in_method),
		cmocka_unit_test(test_session_refuses_nul_in_method),
		cmocka_unit_test(test_classify_keeps_id_of_invalid_request),
		cmocka_unit_test(test_schema_accepts_valid),
		cmocka_unit_test(test_schema_rejects_bad_params),
		cmocka_unit_test(test_range_errors_state_range_and_value),
		cmocka_unit_test(test_schema_names_the_limit),
		cmocka_unit_test(test_schema_getters),
		cmocka_unit_test(test_parse_u64_forms),
		cmocka_unit_test(test_golden_wire_pairs),
		cmocka_unit_test(test_notification_gets_no_reply),
		cmocka_unit_test(test_batch_mixed),
		cmocka_unit_test(test_batch_of_notifications_sends_nothing),
		cmocka_unit_test(test_batch_empty_and_oversized),
		cmocka_unit_test(test_async_batch_waits_for_every_member),
		cmocka_unit_test(test_reply_after_client_left_is_dropped),
		cmocka_unit_test(test_read_only_session_refuses_writes),
		cmocka_unit_test(test_unauthorised_session_refuses_everything_and_reports_it),
		cmocka_unit_test(test_in_flight_limit),
		cmocka_unit_test(test_stray_response_is_invalid),
	};
	return cmocka_run_group_tests_name("api-jsonrpc", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
#include "api/jsonrpc.h"

#include <string.h>

#include "util/macro.h"

/*
 * json-c accepts 'single-quoted' strings even in strict mode; JSON (RFC 8259
 * §7) does not. Returns the offset of a quote outside any "string", or -1.
 */
static long find_single_quote(const char *text, size_t len)
{
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (in_string) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_string = false;
		} else if (ch == '"') {
			in_string = true;
		} else if (ch == '\'') {
			return (long)i;
		}
	}
	return -1;
}

static int parse_failure(struct api_error *err, struct json_tokener *tok)
{
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t off = json_tokener_get_parse_end(tok);

	if (jerr == json_tokener_error_parse_eof || jerr == json_tokener_continue)
		return api_error_set(err, API_ERR_PARSE,
				     "parse error: message ends inside a JSON value");
	if (jerr == json_tokener_success)
		return api_error_set(err, API_ERR_PARSE,
				     "parse error at byte %zu: trailing data after the JSON value",
				     off);
	return api_error_set(err, API_ERR_PARSE, "parse error at byte %zu: %s", off,
			     json_tokener_error_desc(jerr));
}

struct json_tokener *jsonrpc_tokener_new(void)
{
	struct json_tokener *tok = json_tokener_new_ex(JSONRPC_MAX_DEPTH);

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

int jsonrpc_parse_with(struct json_tokener *tok, const char *text, size_t len, json_object **ret,
		       struct api_error *err)
{
	json_object *obj;
	long quote;
	int rc = 0;

	if (len >= INT32_MAX)
		return api_error_set(err, API_ERR_PARSE, "message too large");
	quote = find_single_quote(text, len);
	if (quote >= 0)
		return api_error_set(err, API_ERR_PARSE,
				     "parse error at byte %ld: single quotes are not JSON", quote);
	json_tokener_reset(tok);
	/* Parsing the terminating NUL too tells json-c the input ends there,
	 * so a bare top-level number or literal completes. */
	obj = json_tokener_parse_ex(tok, text, (int)len + 1);
	if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		rc = parse_failure(err, tok);
		json_object_put(obj);
		obj = NULL;
	}
	if (rc == 0)
		*ret = obj;
	return rc;
}

int jsonrpc_parse(const char *text, size_t len, json_object **ret, struct api_error *err)
{
	struct json_tokener *tok = jsonrpc_tokener_new();
	int rc;

	if (!tok)
		return -ENOMEM;
	rc = jsonrpc_parse_with(tok, text, len, ret, err);
	json_tokener_free(tok);
	return rc;
}

static bool id_is_valid(json_object *id)
{
	/* JSON-RPC 2.0 §4: String, Number or Null; fractions SHOULD NOT occur. */
	switch (json_object_get_type(id)) {
	case json_type_null:
	case json_type_int:
	case json_type_string:
		return true;
	default:
		return false;
	}
}

static int classify_response(json_object *obj, json_object *id, struct jsonrpc_msg *ret,
			     struct api_error *err)
{
	json_object *result, *error, *code, *message;
	bool has_result = json_object_object_get_ex(obj, "result", &result);
	bool has_error = json_object_object_get_ex(obj, "error", &error);

	if (has_result == has_error)
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid response: exactly one of 'result' and 'error' is required");
	ret->id = id;
	if (has_result) {
		ret->kind = JSONRPC_RESULT;
		ret->result = result;
		return 0;
	}
	if (!json_object_is_type(error, json_type_object) ||
	    !json_object_object_get_ex(error, "code", &code) ||
	    !json_object_is_type(code, json_type_int) ||
	    !json_object_object_get_ex(error, "message", &message) ||
	    !json_object_is_type(message, json_type_string))
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid response: 'error' needs an integer 'code' and a string 'message'");
	ret->kind = JSONRPC_ERROR;
	ret->error_code = json_object_get_int(code);
	ret->error_message = json_object_get_string(message);
	json_object_object_get_ex(error, "data", &ret->error_data);
	return 0;
}

static int check_members(json_object *obj, bool is_response, struct api_error *err)
{
	static const char *const request_members[] = { "jsonrpc", "method", "params", "id" };
	static const char *const response_members[] = { "jsonrpc", "result", "error", "id" };
	const char *const *allowed = is_response ? response_members : request_members;

	json_object_object_foreach(obj, key, val) {
		bool known = false;
		(void)val;
		for (size_t i = 0; i < 4; i++)
			known |= strcmp(key, allowed[i]) == 0;
		if (!known)
			return api_error_set(err, API_ERR_INVALID_REQUEST,
					     "invalid request: unknown member '%.64s'", key);
	}
	return 0;
}

int jsonrpc_classify(json_object *obj, struct jsonrpc_msg *ret, json_object **ret_id,
		     struct api_error *err)
{
	json_object *version, *method, *params = NULL, *id = NULL;
	struct jsonrpc_msg msg = { 0 };
	bool has_id;
	int rc;

	*ret_id = NULL;
	if (!json_object_is_type(obj, json_type_object))
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid request: expected a JSON object, got %s",
				     json_type_to_name(json_object_get_type(obj)));

	has_id = json_object_object_get_ex(obj, "id", &id);
	if (has_id && !id_is_valid(id))
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid request: 'id' must be a string, an integer or null");
	if (has_id)
		*ret_id = id;

	if (!json_object_object_get_ex(obj, "jsonrpc", &version) ||
	    !json_object_is_type(version, json_type_string) ||
	    strcmp(json_object_get_string(version), "2.0") != 0)
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid request: 'jsonrpc' must be \"2.0\"");

	if (!json_object_object_get_ex(obj, "method", &method)) {
		if (!has_id)
			return api_error_set(err, API_ERR_INVALID_REQUEST,
					     "invalid request: 'method' is required");
		rc = check_members(obj, true, err);
		if (rc < 0)
			return rc;
		rc = classify_response(obj, id, &msg, err);
		if (rc == 0)
			*ret = msg;
		return rc;
	}
	if (!json_object_is_type(method, json_type_string))
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid request: 'method' must be a string");
	/* Method names are C strings from here on: "vm.list\u0000x" must not
	 * pass for "vm.list". */
	if (strlen(json_object_get_string(method)) != (size_t)json_object_get_string_len(method))
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid request: 'method' must not contain NUL characters");
	rc = check_members(obj, false, err);
	if (rc < 0)
		return rc;
	if (json_object_object_get_ex(obj, "params", &params) &&
	    !json_object_is_type(params, json_type_object) &&
	    !json_object_is_type(params, json_type_array))
		return api_error_set(err, API_ERR_INVALID_REQUEST,
				     "invalid request: 'params' must be an object or an array");

	msg.kind = has_id ? JSONRPC_REQUEST : JSONRPC_NOTIFICATION;
	msg.method = json_object_get_string(method);
	msg.params = params;
	msg.id = id;
	*ret = msg;
	return 0;
}

static json_object *envelope_new(json_object *id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", id ? json_object_get(id) : NULL);
	return o;
}

json_object *jsonrpc_result_new(json_object *id, json_object *result)
{
	json_object *o = envelope_new(id);

	json_object_object_add(o, "result", result);
	return o;
}

json_object *jsonrpc_error_new(json_object *id, int code, const char *message,
			       json_object *data)
{
	json_object *o = envelope_new(id);
	json_object *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	if (data)
		json_object_object_add(e, "data", data);
	json_object_object_add(o, "error", e);
	return o;
}

json_object *jsonrpc_request_new(const char *method, json_object *params, int64_t id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(o, "params", params);
	json_object_object_add(o, "id", json_object_new_int64(id));
	return o;
}

json_object *jsonrpc_notification_new(const char *method, json_object *params)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(o, "params", params);
	return o;
}

const char *jsonrpc_to_text(json_object *obj, size_t *ret_len)
{
	return json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, ret_len);
}

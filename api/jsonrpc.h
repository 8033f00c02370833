/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification): parsing one
 * line into a JSON value, classifying a value as request / notification /
 * response, and building responses, requests and notifications.
 *
 * json_object references: functions named *_new return a new reference the
 * caller owns; parsed messages borrow from their root.
 */
#ifndef VMMD_API_JSONRPC_H
#define VMMD_API_JSONRPC_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/errors.h"

/* Nesting depth accepted from peers (json-c's default is 32). */
#define JSONRPC_MAX_DEPTH 32
/* Elements in one batch. */
#define JSONRPC_MAX_BATCH 128

enum jsonrpc_kind {
	JSONRPC_REQUEST,
	JSONRPC_NOTIFICATION,
	JSONRPC_RESULT,
	JSONRPC_ERROR,
};

struct jsonrpc_msg {
	enum jsonrpc_kind kind;
	const char *method;	/* requests and notifications */
	json_object *params;	/* object, array or NULL */
	json_object *id;	/* requests and responses; may be a JSON null */
	json_object *result;	/* JSONRPC_RESULT */
	int error_code;		/* JSONRPC_ERROR */
	const char *error_message;
	json_object *error_data;
};

/*
 * Parses one message text (strict JSON, valid UTF-8, depth-limited).
 * text[len] must be '\0' (frame readers guarantee it); a NUL inside the
 * text is trailing garbage.
 * On success *ret is a new reference. On failure err says where parsing
 * stopped, with code API_ERR_PARSE.
 */
int jsonrpc_parse(const char *text, size_t len, json_object **ret, struct api_error *err);

/* The same with a tokener kept by the caller (one per connection saves an
 * allocation per message). tok must come from jsonrpc_tokener_new(). */
struct json_tokener *jsonrpc_tokener_new(void);
int jsonrpc_parse_with(struct json_tokener *tok, const char *text, size_t len, json_object **ret,
		       struct api_error *err);

/*
 * Classifies one JSON value (not a batch). Fills *ret with borrowed
 * pointers into obj. Invalid messages give API_ERR_INVALID_REQUEST with a
 * message naming the member; *ret_id is still set when a usable id was
 * found so the error reply can carry it.
 */
int jsonrpc_classify(json_object *obj, struct jsonrpc_msg *ret, json_object **ret_id,
		     struct api_error *err);

/* {"jsonrpc":"2.0","result":result,"id":id}. Takes ownership of result. */
json_object *jsonrpc_result_new(json_object *id, json_object *result);

/* {"jsonrpc":"2.0","error":{code,message[,data]},"id":id or null}. Takes data. */
json_object *jsonrpc_error_new(json_object *id, int code, const char *message,
			       json_object *data);

/* Request with an integer id; takes ownership of params (may be NULL). */
json_object *jsonrpc_request_new(const char *method, json_object *params, int64_t id);

/* Notification (no id); takes ownership of params (may be NULL). */
json_object *jsonrpc_notification_new(const char *method, json_object *params);

/* Compact single-line text of obj, valid until obj is freed. */
const char *jsonrpc_to_text(json_object *obj, size_t *ret_len);

#endif

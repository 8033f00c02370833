/* SPDX-License-Identifier: MIT */
/*
 * Parameter schemas: every method declares its parameters once, and one
 * validator checks a request's params against it before the handler runs:
 * params must be an object (or absent), unknown names are refused, required
 * ones must be present, and each value must have the declared type and lie
 * in its range. Error messages name the parameter.
 */
#ifndef VMMD_API_SCHEMA_H
#define VMMD_API_SCHEMA_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/errors.h"

enum api_type {
	API_T_STRING,
	API_T_INT,    /* JSON integer in [min, max] */
	API_T_U64,    /* integer >= 0, or a string "0x..."/decimal for 64-bit values */
	API_T_BOOL,
	API_T_OBJECT,
	API_T_ARRAY,
	API_T_ENUM,   /* string, one of .choices */
};

struct api_param {
	const char *name;
	enum api_type type;
	bool required;
	int64_t min;		/* API_T_INT */
	int64_t max;		/* API_T_INT; 0 with min 0 means "no bound" */
	const char *unit;	/* API_T_INT: the range's unit in messages ("bytes"), or NULL */
	const char *bound;	/* API_T_INT: where max comes from in messages ("the
				 * memory-read limit"), or NULL */
	size_t max_len;		/* API_T_STRING; 0 means API_STRING_MAX */
	const char *const *choices; /* API_T_ENUM, NULL-terminated */
};

/* Default bound on string parameters. */
#define API_STRING_MAX 4096

/*
 * Validates params (object or NULL) against schema, an array terminated by
 * an entry with name == NULL. Returns 0, or -EINVAL with err filled
 * (API_ERR_INVALID_PARAMS).
 */
int api_params_validate(const struct api_param *schema, json_object *params,
			struct api_error *err);

/*
 * Typed getters for validated params; they return the default when the
 * parameter is absent. api_param_u64 accepts the same forms as API_T_U64.
 */
const char *api_param_string(json_object *params, const char *name, const char *def);
int64_t api_param_int(json_object *params, const char *name, int64_t def);
uint64_t api_param_u64(json_object *params, const char *name, uint64_t def);
bool api_param_bool(json_object *params, const char *name, bool def);
json_object *api_param_get(json_object *params, const char *name);

/* The JSON type of v as error messages name it: "string", "integer", "null"... */
const char *api_json_kind(json_object *v);

/* True when v, a JSON integer, lies in [min, max]; integers beyond 64 bits
 * never do. */
bool api_int_in_range(json_object *v, int64_t min, int64_t max);

/*
 * The one wording of a range error, returned like api_error_set():
 * "parameter 'NAME' must be between MIN and MAX[ UNIT][ (WHY)], got VALUE",
 * VALUE being the JSON integer given (json-c clamps those beyond 64 bits:
 * they read "18446744073709551615 or more" and "-9223372036854775808 or less").
 */
int api_param_range_error(struct api_error *err, const char *name, json_object *value,
			  int64_t min, int64_t max, const char *unit, const char *why);

/* Parses "0x1f", "31" (no sign, no junk) into *ret; -EINVAL or -ERANGE. */
int api_parse_u64(const char *s, uint64_t *ret);

#endif

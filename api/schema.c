/* SPDX-License-Identifier: MIT */
#include "api/schema.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

const char *api_json_kind(json_object *v)
{
	if (!v)
		return "null";
	switch (json_object_get_type(v)) {
	case json_type_boolean: return "boolean";
	case json_type_double: return "number";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	default: return "null";
	}
}

int api_parse_u64(const char *s, uint64_t *ret)
{
	int base = 10;
	char *end;
	unsigned long long v;

	if (!s || !*s || !isxdigit((unsigned char)s[0]))
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

static const struct api_param *schema_find(const struct api_param *schema, const char *name)
{
	for (; schema->name; schema++)
		if (strcmp(schema->name, name) == 0)
			return schema;
	return NULL;
}

static int type_error(const struct api_param *p, json_object *v, const char *want,
		      struct api_error *err)
{
	return api_error_set(err, API_ERR_INVALID_PARAMS, "parameter '%s' must be %s, got %s",
			     p->name, want, api_json_kind(v));
}

/* json-c keeps integers up to UINT64_MAX; json_object_get_int64() reads
 * those beyond INT64_MAX as INT64_MAX. */
static bool int_beyond_int64(json_object *v)
{
	return json_object_get_int64(v) == INT64_MAX &&
	       json_object_get_uint64(v) > (uint64_t)INT64_MAX;
}

bool api_int_in_range(json_object *v, int64_t min, int64_t max)
{
	int64_t x = json_object_get_int64(v);

	return !int_beyond_int64(v) && x >= min && x <= max;
}

/* The integer as the client wrote it, as far as json-c kept it: it clamps
 * integers beyond 64 bits to UINT64_MAX or INT64_MIN. */
static void format_int(json_object *v, char *buf, size_t size)
{
	int64_t x = json_object_get_int64(v);
	uint64_t u = json_object_get_uint64(v);

	if (int_beyond_int64(v))
		snprintf(buf, size, "%llu%s", (unsigned long long)u,
			 u == UINT64_MAX ? " or more" : "");
	else
		snprintf(buf, size, "%lld%s", (long long)x, x == INT64_MIN ? " or less" : "");
}

int api_param_range_error(struct api_error *err, const char *name, json_object *value,
			  int64_t min, int64_t max, const char *unit, const char *why)
{
	char given[48];

	format_int(value, given, sizeof(given));
	return api_error_set(err, API_ERR_INVALID_PARAMS,
			     "parameter '%s' must be between %lld and %lld%s%s%s%s%s, got %s", name,
			     (long long)min, (long long)max, unit ? " " : "", unit ? unit : "",
			     why ? " (" : "", why ? why : "", why ? ")" : "", given);
}

static int check_int(const struct api_param *p, json_object *v, struct api_error *err)
{
	if (!json_object_is_type(v, json_type_int))
		return type_error(p, v, "an integer", err);
	if ((p->min != 0 || p->max != 0) && !api_int_in_range(v, p->min, p->max))
		return api_param_range_error(err, p->name, v, p->min, p->max, p->unit,
					     p->bound);
	return 0;
}

static int check_u64(const struct api_param *p, json_object *v, struct api_error *err)
{
	uint64_t x;

	if (json_object_is_type(v, json_type_int)) {
		if (json_object_get_int64(v) < 0)
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "parameter '%s' must not be negative", p->name);
		/* json-c clamps integers beyond 64 bits to UINT64_MAX: that value
		 * may stand for any larger one. */
		if (json_object_get_uint64(v) == UINT64_MAX)
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "parameter '%s' does not fit in 64 bits, or is 2^64-1, "
					     "which a JSON integer cannot tell apart: give 64-bit "
					     "values as a string like \"0xffffffffffffffff\"",
					     p->name);
		return 0;
	}
	if (json_object_is_type(v, json_type_string)) {
		int rc = api_parse_u64(json_object_get_string(v), &x);
		if (rc == -ERANGE)
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "parameter '%s' does not fit in 64 bits", p->name);
		if (rc < 0)
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "parameter '%s' must be an unsigned integer or a string like \"0x1000\", got \"%.40s\"",
					     p->name, json_object_get_string(v));
		return 0;
	}
	return type_error(p, v, "an unsigned integer or a hex string", err);
}

static int check_string(const struct api_param *p, json_object *v, struct api_error *err)
{
	size_t max = p->max_len ? p->max_len : API_STRING_MAX;
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return type_error(p, v, "a string", err);
	len = (size_t)json_object_get_string_len(v);
	if (len > max)
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter '%s' is too long (%zu bytes, limit %zu)", p->name,
				     len, max);
	if (memchr(json_object_get_string(v), '\0', len))
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "parameter '%s' must not contain NUL characters", p->name);
	return 0;
}

static int check_enum(const struct api_param *p, json_object *v, struct api_error *err)
{
	char list[256] = "";
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return type_error(p, v, "a string", err);
	s = json_object_get_string(v);
	for (const char *const *c = p->choices; *c; c++) {
		if (strcmp(*c, s) == 0)
			return 0;
		if (strlen(list) + strlen(*c) + 3 < sizeof(list)) {
			if (c != p->choices)
				strcat(list, ", ");
			strcat(list, *c);
		}
	}
	return api_error_set(err, API_ERR_INVALID_PARAMS,
			     "parameter '%s' must be one of: %s; got \"%.40s\"", p->name, list, s);
}

static int check_value(const struct api_param *p, json_object *v, struct api_error *err)
{
	switch (p->type) {
	case API_T_STRING: return check_string(p, v, err);
	case API_T_INT: return check_int(p, v, err);
	case API_T_U64: return check_u64(p, v, err);
	case API_T_ENUM: return check_enum(p, v, err);
	case API_T_BOOL:
		return json_object_is_type(v, json_type_boolean) ? 0
								 : type_error(p, v, "a boolean", err);
	case API_T_OBJECT:
		return json_object_is_type(v, json_type_object) ? 0
								: type_error(p, v, "an object", err);
	case API_T_ARRAY:
		return json_object_is_type(v, json_type_array) ? 0
							       : type_error(p, v, "an array", err);
	}
	return api_error_set(err, API_ERR_INTERNAL, "parameter '%s' has no type", p->name);
}

int api_params_validate(const struct api_param *schema, json_object *params,
			struct api_error *err)
{
	if (params && json_object_is_type(params, json_type_array))
		return api_error_set(err, API_ERR_INVALID_PARAMS,
				     "params must be an object with named parameters, not an array");
	if (params && !json_object_is_type(params, json_type_object))
		return api_error_set(err, API_ERR_INVALID_PARAMS, "params must be an object");

	if (params) {
		json_object_object_foreach(params, key, val) {
			const struct api_param *p = schema_find(schema, key);
			if (!p)
				return api_error_set(err, API_ERR_INVALID_PARAMS,
						     "unknown parameter '%.64s'", key);
			/* An explicit null counts as absent, but is no value for a
			 * required parameter: that is a wrong type. */
			if (!val && !p->required)
				continue;
			int rc = check_value(p, val, err);
			if (rc < 0)
				return rc;
		}
	}
	for (const struct api_param *p = schema; p->name; p++)
		if (p->required && !api_param_get(params, p->name))
			return api_error_set(err, API_ERR_INVALID_PARAMS,
					     "missing required parameter '%s'", p->name);
	return 0;
}

json_object *api_param_get(json_object *params, const char *name)
{
	json_object *v = NULL;

	if (!params || !json_object_object_get_ex(params, name, &v))
		return NULL;
	return v;
}

const char *api_param_string(json_object *params, const char *name, const char *def)
{
	json_object *v = api_param_get(params, name);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : def;
}

int64_t api_param_int(json_object *params, const char *name, int64_t def)
{
	json_object *v = api_param_get(params, name);

	return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : def;
}

uint64_t api_param_u64(json_object *params, const char *name, uint64_t def)
{
	json_object *v = api_param_get(params, name);
	uint64_t x;

	if (v && json_object_is_type(v, json_type_int))
		return json_object_get_uint64(v);
	if (v && json_object_is_type(v, json_type_string) &&
	    api_parse_u64(json_object_get_string(v), &x) == 0)
		return x;
	return def;
}

bool api_param_bool(json_object *params, const char *name, bool def)
{
	json_object *v = api_param_get(params, name);

	return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : def;
}
